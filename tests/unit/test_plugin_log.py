"""A trial's log lines: written in order, rate-limited with a count, read back whole."""

from __future__ import annotations

import logging

from unitrain.reporting.plugin_log import PluginLog, PluginLogHandler, read_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_come_back_in_order_from_where_the_reader_left_off(tmp_path):
    log = PluginLog(tmp_path)
    log.write("INFO", "one")
    first, offset = read_lines(tmp_path)
    log.write("WARNING", "two")
    second, _ = read_lines(tmp_path, offset)
    assert [(x["level"], x["text"]) for x in first + second] == [
        ("INFO", "one"),
        ("WARNING", "two"),
    ]


def test_a_torn_last_line_waits_for_its_end(tmp_path):
    PluginLog(tmp_path).write("INFO", "whole")
    with open(tmp_path / "log.jsonl", "a") as handle:
        handle.write('{"level": "INFO", "te')
    lines, offset = read_lines(tmp_path)
    assert [x["text"] for x in lines] == ["whole"] and offset < (
        tmp_path / "log.jsonl"
    ).stat().st_size


def test_a_flood_is_cut_to_the_rate_and_the_drop_is_said_when_lines_flow_again(tmp_path):
    clock = Clock()
    log = PluginLog(tmp_path, rate=10, burst=5, clock=clock)
    written = [log.write("INFO", f"line {i}") for i in range(20)]
    assert written == [True] * 5 + [False] * 15
    clock.now = 1.0  # ten more a second, but at most the burst (5) at once
    assert log.write("INFO", "after")
    log.write("INFO", "more")
    for _ in range(20):
        log.write("INFO", "flood")
    log.close()
    texts = [x["text"] for x in read_lines(tmp_path)[0]]
    assert texts[5] == "15 log line(s) dropped: more than 10 a second (15 in all)"
    assert texts[6:8] == ["after", "more"]
    assert texts[-1].startswith("17 log line(s) dropped") and texts[-1].endswith("(32 in all)")


def test_the_handler_passes_info_and_above(tmp_path):
    said = []
    logger = logging.getLogger("tests.plugin_log")
    logger.setLevel(logging.DEBUG)
    handler = PluginLogHandler(lambda level, text: said.append((level, text)))
    logger.addHandler(handler)
    try:
        logger.debug("quiet")
        logger.info("loss %.2f", 0.5)
        logger.error("bad")
    finally:
        logger.removeHandler(handler)
    assert said == [("INFO", "loss 0.50"), ("ERROR", "bad")]

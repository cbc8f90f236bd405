import numpy as np

from tests.stores import mlflow_client, new_run
from unitrain.plugin_api import TrainRun
from unitrain.run_sinks import FolderSink, MlflowSink, read_metrics
from unitrain.stores.runs import RunStore


def test_metrics_and_images_land_in_mlflow(home):
    run_id = new_run()
    run = TrainRun(sink=MlflowSink(run_id, RunStore()))
    for epoch, loss in enumerate([0.9, 0.5, 0.2]):
        run.log_metric("training", "loss", loss, epoch=epoch)
    run.log_visualization("predictions", "validation", 2, np.zeros((8, 8, 3), dtype=np.uint8))
    run.log_message("hello")
    run.close()
    history = mlflow_client().get_metric_history(run_id, "training/loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.2)]
    files = [
        f.path
        for f in mlflow_client().list_artifacts(run_id, "visualizations/predictions/validation")
    ]
    assert files == ["visualizations/predictions/validation/00002.png"]
    assert "messages.log" in [f.path for f in mlflow_client().list_artifacts(run_id)]


def test_log_trials_keeps_four_metric_columns():
    tables = []
    run = TrainRun(trials_sink=tables.append)
    payload = run.log_trials(
        trials={"t1": {"status": "RUNNING", "lr": 0.1, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}},
        base=["status"],
        hyperparameters=["lr"],
        metrics=["a", "b", "c", "d", "e"],
    )
    assert payload["metrics"] == ["a", "b", "c", "d"] and payload["best_trial"] == ""
    assert tables[0].rows() == [
        {"trial_id": "t1", "status": "RUNNING", "lr": 0.1, "a": 1, "b": 2, "c": 3, "d": 4}
    ]


def test_set_progress_in_a_trial_does_not_move_the_job_bar():
    class Step:
        calls = 0

        def update(self, current, total):
            Step.calls += 1

    TrainRun(progress=Step(), trial_id="t").set_progress(1, 2)
    assert Step.calls == 0
    TrainRun(progress=Step()).set_progress(1, 2)
    assert Step.calls == 1


def test_report_records_metrics_and_forwards_them():
    sent = []
    run = TrainRun(reporter=sent.append, trial_id="t")
    run.report({"accuracy": 0.5, "name": "x"}, epoch=1)
    run.report({"accuracy": 0.75})
    assert sent == [{"accuracy": 0.5, "name": "x", "epoch": 1}, {"accuracy": 0.75}]
    assert run.last_metrics == {"accuracy": 0.75}
    assert run.records[0] == {"report": {"accuracy": 0.5}, "metrics": {"epoch": 1}, "trial_id": "t"}


def test_report_in_training_mode_is_recorded_only(home):
    run_id = new_run()
    run = TrainRun(sink=MlflowSink(run_id, RunStore()))
    for epoch in range(3):
        run.report({"loss": 1.0 / (epoch + 1)}, epoch=epoch)
    run.close(final_metrics={"loss": 1 / 3, "accuracy": 0.9})
    history = mlflow_client().get_metric_history(run_id, "loss")
    # the final value, already reported at its step, is not logged a second time
    assert [(m.step, round(m.value, 3)) for m in history] == [(0, 1.0), (1, 0.5), (2, 0.333)]
    assert mlflow_client().get_run(run_id).data.metrics["accuracy"] == 0.9


def test_a_trial_run_writes_into_its_folder_for_the_driver(tmp_path):
    run = TrainRun(sink=FolderSink(tmp_path / "record"), trial_id="t1")
    run.log_params({"lr": 0.1, "layers": [2, 3]})
    for epoch in range(3):
        run.log_metric("training", "loss", 1.0 / (epoch + 1), epoch=epoch)
    run.log_visualization("predictions", "validation", 2, b"png-bytes")
    run.log_message("hello")
    run.close(final_metrics={"loss": 1 / 3, "accuracy": 0.5})
    metrics, offset = read_metrics(tmp_path / "record")
    assert [(k, round(v, 3), step) for k, v, _, step in metrics] == [
        ("training/loss", 1.0, 0),
        ("training/loss", 0.5, 1),
        ("training/loss", 0.333, 2),
        ("loss", 0.333, 0),
        ("accuracy", 0.5, 0),
    ]
    assert read_metrics(tmp_path / "record", offset) == ([], offset)  # nothing new
    record = tmp_path / "record"
    assert (record / "artifacts/visualizations/predictions/validation/00002.png").read_bytes() == (
        b"png-bytes"
    )
    assert "hello" in (record / "artifacts/messages.log").read_text()
    import json

    assert json.loads((record / "params.json").read_text()) == {"lr": "0.1", "layers": "[2, 3]"}


def test_a_half_written_line_is_read_only_once_complete(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('["a", 1.0, 0, 0]\n["b", 2.')
    metrics, offset = read_metrics(tmp_path)
    assert metrics == [("a", 1.0, 0, 0)]
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write("0, 0, 1]\n")
    assert read_metrics(tmp_path, offset)[0] == [("b", 2.0, 0, 1)]

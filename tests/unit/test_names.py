from pathlib import Path

import pytest

from unitrain.job.names import MAX_NAME_LENGTH, encode_job_name, job_folder


def test_colon_and_comma_are_percent_encoded():
    assert encode_job_name("experiment:v1,batch:32") == "experiment%3Av1%2Cbatch%3A32"


def test_different_names_never_share_a_stored_form():
    assert encode_job_name("a:b") != encode_job_name("a%3Ab") == "a%253Ab"


def test_a_name_that_grows_past_a_folder_name_is_rejected():
    with pytest.raises(ValueError, match="bytes once stored"):
        encode_job_name(":" * 100)


def test_surrounding_blanks_are_dropped():
    assert encode_job_name("  my_model ") == "my_model"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("../x", "not a path"),
        ("a/b", "not a path"),
        ("a\\b", "not a path"),
        ("..", "must not be '..'"),
        (".", "must not be '.'"),
        ("a\x00b", "control characters"),
        ("tab\there", "control characters"),
        ("x" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH}"),
    ],
)
def test_names_that_could_escape_a_folder_are_rejected(name, rule):
    with pytest.raises(ValueError, match=rule):
        encode_job_name(name)


def test_job_folder_stays_inside_root(tmp_path: Path):
    assert job_folder(tmp_path, "job%3A1") == tmp_path.resolve() / "job%3A1"
    with pytest.raises(ValueError, match="inside"):
        job_folder(tmp_path, "../outside")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("job\u202eevil", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("jo\u200bb", "U+200B (ZERO WIDTH SPACE)"),
        ("jo\u200db", "U+200D (ZERO WIDTH JOINER)"),
        ("job\u00a0one", "U+00A0 (NO-BREAK SPACE)"),
        ("a\u2028b", "U+2028 (LINE SEPARATOR)"),
    ],
)
def test_names_that_could_pass_for_another_are_refused(name, shown):
    with pytest.raises(ValueError, match="invisible or direction-changing") as raised:
        encode_job_name(name)
    assert shown in str(raised.value)


def test_names_are_normalised_so_one_name_has_one_form():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert encode_job_name(decomposed) == encode_job_name(composed) == composed

from pathlib import Path

import pytest

from unitrain.names import MAX_NAME_LENGTH, decode_job_name, encode_job_name, job_folder


def test_colon_and_comma_are_percent_encoded():
    assert encode_job_name("experiment:v1,batch:32") == "experiment%3Av1%2Cbatch%3A32"
    assert decode_job_name("experiment%3Av1%2Cbatch%3A32") == "experiment:v1,batch:32"


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

import json
import re
from pathlib import Path

import numpy as np
import pytest

from unitrain.cli import main


def write(path: Path, document) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_invalid_job_exits_2_with_one_message_and_writes_nothing(home, tmp_path, capsys):
    job = write(tmp_path / "job.json", {"action": "train", "params": {"name": "x", "dataset": 1}})
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    assert main(["run", job]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: invalid job: hyperparameter is required when is_tune=False"
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before


def test_bad_json_names_the_position(tmp_path, capsys):
    (tmp_path / "job.json").write_text('{"action": "train",, }')
    assert main(["run", str(tmp_path / "job.json")]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_datasets_add_and_list(home, tmp_path, capsys):
    np.savez(tmp_path / "toy.npz", X=np.zeros((4, 2)), y=np.zeros(4))
    assert main(["datasets", "add", str(tmp_path / "toy.npz"), "--id", "456"]) == 0
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "dataset 456 (toy.npz)" in out and "456  toy.npz" in out and "1    digits" in out


def test_validate_prints_the_plan(home, tmp_path, capsys):
    job = write(tmp_path / "job.json", {"name": "x", "dataset": 1, "hyperparameter": {"epochs": 2}})
    assert main(["validate", job]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "training" and summary["hyperparameter"]["epochs"] == 2


def test_models_list_on_an_empty_registry(home, capsys):
    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out.startswith("ID")


def test_gpu_job_on_a_machine_without_gpus_is_refused_before_anything_starts(
    home, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    job = write(
        tmp_path / "job.json",
        {
            "name": "gpu",
            "dataset": 1,
            "is_tune": True,
            "num_gpus": 0.5,
            "hyperparameters": [
                {
                    "name": "learning_rate",
                    "type": "loguniform",
                    "min": 1e-4,
                    "max": 1e-2,
                    "base": 10,
                }
            ],
            "tune_config": {"metric": "accuracy"},
        },
    )
    assert main(["run", job]) == 2
    assert "num_gpus=0.5: this machine has 0 GPUs" in capsys.readouterr().err
    assert not (home / "prefect").exists()


def test_version_and_help_speak_plain_text(capsys):
    from importlib.metadata import version

    from unitrain import cli

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"unitrain {version('unitrain')}"
    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text
        for code in (
            0,
            cli.EXIT_FAILED,
            cli.EXIT_INVALID,
            cli.EXIT_INTERRUPTED,
            cli.EXIT_TERMINATED,
        ):
            assert re.search(rf"^  {code} +\S", text, re.MULTILINE), (argv, code)


def test_the_readme_documents_every_exit_code():
    from unitrain import cli

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    documented = {int(code) for code in re.findall(r"^  \| (\d+) \|", readme, re.MULTILINE)}
    assert documented == {
        0,
        cli.EXIT_FAILED,
        cli.EXIT_INVALID,
        cli.EXIT_INTERRUPTED,
        cli.EXIT_TERMINATED,
    }

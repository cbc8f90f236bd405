"""``unitrain jobs``: read back from real job records and a real MLflow store."""

import json
import multiprocessing
import time

from tests.stores import mlflow_client, new_run, register_model
from unitrain.cli import main
from unitrain.stores.job_state import JobFolder, JobRecord
from unitrain.stores.registry import ModelRegistry
from unitrain.ui.job_list import job_details, list_jobs


def record(name: str, mode: str, state: str, started: float, run_id: str = "") -> None:
    JobFolder(name).save(
        JobRecord(
            job=name,
            mode=mode,
            digest="d",
            state=state,  # type: ignore[arg-type]
            run_id=run_id,
            flow_runs=["f-1"],
            started_at=started,
            updated_at=started + 90,
        )
    )


def register(registry: ModelRegistry, job: str, run_id: str, score: float, tmp_path) -> int:
    return register_model(
        job, tmp_path / f"model-{job}-{score}", plugin="synthetic", metrics={"score": score},
        run_id=run_id,
    )  # fmt: skip


def _hold(name: str, ready, release) -> None:
    with JobFolder(name).locked():
        ready.set()
        release.wait(30)


def test_jobs_are_listed_newest_first_with_state_duration_and_models(home, tmp_path, capsys):
    registry = ModelRegistry()
    run = new_run()
    record("older", "training", "finished", 1_000.0, run_id=run)
    first = register(registry, "older", run, 0.5, tmp_path)
    second = register(registry, "older", run, 0.7, tmp_path)
    record("crashed-one", "tuning", "running", 2_000.0)  # nobody holds its name
    record("busy", "tuning", "running", 3_000.0)
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold, args=("busy", ready, release)
    )
    holder.start()
    try:
        assert ready.wait(30)
        jobs = list_jobs()
        assert [j.name for j in jobs] == ["busy", "crashed-one", "older"]
        assert [j.state for j in jobs] == ["running", "crashed", "finished"]
        older = jobs[-1]
        assert older.duration_s == 90 and older.model_ids == [first, second]
        assert older.model_id == second and older.best_metrics == {"score": 0.7}
        assert jobs[0].duration_s > time.time() - 3_000.0 - 5  # running: up to now

        assert main(["jobs"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["JOB", "MODE", "STATE", "STARTED", "TOOK", "BEST", "MODELS"]
        assert "crashed" in table[2] and "score=0.7" in table[3]
        assert main(["jobs", "--json"]) == 0
        assert [j["name"] for j in json.loads(capsys.readouterr().out)] == [
            "busy",
            "crashed-one",
            "older",
        ]
    finally:
        release.set()
        holder.join(30)


def test_one_job_shows_its_links_and_trial_table(home, tmp_path, capsys):
    run = new_run()
    mlflow_client().log_dict(
        run,
        {"trials": {"t1": {"status": "TERMINATED", "score": 0.9}}, "best_trial": "t1"},
        "trials.json",
    )
    record("searched", "tuning", "finished", 1_000.0, run_id=run)
    details = job_details("searched")
    assert details is not None
    assert details["links"]["mlflow"].endswith(f"/runs/{run}")
    assert details["links"]["prefect"].endswith("/runs/flow-run/f-1")
    assert details["trials"] == [{"trial_id": "t1", "status": "TERMINATED", "score": 0.9}]
    assert main(["jobs", "show", "searched"]) == 0
    shown = capsys.readouterr().out
    assert "job searched: tuning, finished" in shown and "★ t1" in shown
    assert main(["jobs", "show", "nothing-here"]) == 1
    assert "no job named 'nothing-here'" in capsys.readouterr().err


def test_a_job_with_more_models_than_listed_shows_its_newest_and_its_best(
    home, tmp_path, monkeypatch, capsys
):
    import unitrain.ui.job_list as job_list

    monkeypatch.setattr(job_list, "LISTED_MODELS", 2)
    registry = ModelRegistry()
    run = new_run()
    record("search", "tuning", "finished", 1_000.0, run_id=run)
    ids = [register(registry, "search", run, score, tmp_path) for score in (0.9, 0.1, 0.2, 0.3)]
    registry.mark_best(ids[0], "search")  # the best is not among the newest
    [job] = list_jobs()
    assert job.model_ids == ids[-2:] and job.more_models
    assert job.model_id == ids[0] and job.best_metrics == {"score": 0.9}
    assert main(["jobs"]) == 0
    assert f"({2}+)" in capsys.readouterr().out

from pathlib import Path

import pytest

from tests.stores import register_model as publish
from unitrain.errors import JobValidationError
from unitrain.job.plan import TuningPlan
from unitrain.planning import plan_job
from unitrain.stores.job_state import JobFolder, JobRecord

PARAMS = {"name": "job", "dataset": 1, "hyperparameter": {"epochs": 1}}


def register_model(job: str, tmp_path: Path) -> int:
    return publish(job, tmp_path / f"m-{job}", plugin="digits_mlp")


def test_plan_fills_plugin_defaults(home):
    plan = plan_job(PARAMS)
    assert plan.plugin == "digits_mlp" and plan.hyperparameter["optimizer"] == "adam"
    assert plan.dataset.name == "digits" and plan.checkpoint_id is None


def test_unknown_plugin_key_is_rejected_before_training(home):
    with pytest.raises(
        JobValidationError,
        match=r"hyperparameter.image_size: not a hyperparameter of plugin 'digits_mlp'",
    ):
        plan_job({**PARAMS, "hyperparameter": {"image_size": 224}})


def test_searched_names_are_checked_against_the_plugin(home):
    params = {
        "name": "t",
        "dataset": 1,
        "is_tune": True,
        "tune_config": {"metric": "accuracy"},
        "hyperparameters": [{"name": "nesterov", "type": "uniform", "min": 0, "max": 1}],
    }
    with pytest.raises(
        JobValidationError, match=r"hyperparameters: \['nesterov'\] are not hyperparameters"
    ):
        plan_job(params)


def test_unknown_dataset_and_checkpoint_fail_before_anything_runs(home):
    with pytest.raises(JobValidationError, match="dataset: dataset 456 is not in the catalog"):
        plan_job({**PARAMS, "dataset": 456})
    with pytest.raises(JobValidationError, match="checkpoint: model 789 does not exist"):
        plan_job({**PARAMS, "checkpoint": 789})


def test_unknown_plugin_is_a_validation_error(home):
    with pytest.raises(JobValidationError, match="plugin: 'nope' is not an installed plugin"):
        plan_job(PARAMS, "nope")


def test_taken_name_is_rejected_in_training_mode_only(home, tmp_path):
    register_model("job", tmp_path)
    with pytest.raises(JobValidationError, match="name: a model of job 'job' already exists"):
        plan_job(PARAMS)
    tuning = {
        "name": "job",
        "dataset": 1,
        "is_tune": True,
        "tune_config": {"metric": "accuracy"},
        "hyperparameters": [{"name": "epochs", "type": "randint", "min": 1, "max": 2}],
    }
    assert plan_job(tuning).mode == "tuning"


def record(plan, state):
    JobFolder(plan.job).save(
        JobRecord(job=plan.job, mode=plan.mode, digest=plan.digest, state=state)
    )


@pytest.mark.parametrize("state", ["running", "interrupted", "failed"])
def test_an_unfinished_job_resumes_with_the_same_parameters_only(home, state):
    plan = plan_job(PARAMS)
    record(plan, state)
    again = plan_job(PARAMS)
    assert again.digest == plan.digest
    assert any("stopped before it finished" in note and "resuming" in note for note in again.notes)
    with pytest.raises(JobValidationError, match="with other parameters; run it again unchanged"):
        plan_job({**PARAMS, "hyperparameter": {"epochs": 2}})


def test_a_finished_job_is_not_run_again(home):
    record(plan_job(PARAMS), "finished")
    with pytest.raises(
        JobValidationError,
        match="name: job 'job' already finished; choose a new name, or pass \"checkpoint\"",
    ):
        plan_job(PARAMS)
    assert plan_job({**PARAMS, "checkpoint": "latest"}).checkpoint_id is None  # a new round
    tuning = {
        "name": "t",
        "dataset": 1,
        "is_tune": True,
        "tune_config": {"metric": "accuracy"},
        "hyperparameters": [{"name": "epochs", "type": "randint", "min": 1, "max": 2}],
    }
    record(plan_job(tuning), "finished")
    with pytest.raises(JobValidationError, match="'t' already finished; choose a new name, or"):
        plan_job(tuning)
    # A tuning job that extends its own study starts a new round of it.
    rounds = {**tuning, "tune_config": {"metric": "accuracy", "extend": "t"}}
    assert "job 't' finished; starting a new round of its study" in plan_job(rounds).notes


def test_a_tuning_plan_carries_its_space_and_config(home):
    plan = plan_job(
        {
            "name": "t",
            "dataset": 1,
            "is_tune": True,
            "tune_config": {"metric": "score", "num_samples": 6},
            "hyperparameters": [
                {"name": "x", "type": "quniform", "min": 0, "max": 1},
                {"name": "label", "type": "grid_search", "options": ["a", "b", "c"]},
            ],
        },
        "synthetic",
    )
    assert isinstance(plan, TuningPlan) and plan.mode == "tuning"
    assert plan.config.metric == "score" and plan.searched_names == ["x", "label"]
    assert (plan.total_trials, plan.grid_size) == (6, 3)
    assert "x: no q given, using q=0.01" in plan.notes
    assert not isinstance(plan_job(PARAMS), TuningPlan)


def test_latest_continues_the_same_job(home, tmp_path):
    first = plan_job({**PARAMS, "checkpoint": "latest"})
    assert first.checkpoint_id is None and "no model yet" in first.notes[0]
    model_id = register_model("job", tmp_path)
    assert plan_job({**PARAMS, "checkpoint": "latest"}).checkpoint_id == model_id
    other = plan_job({**PARAMS, "name": "other", "checkpoint": "latest:job"})
    assert other.checkpoint_id == model_id
    with pytest.raises(JobValidationError, match="job 'nobody' has no registered model"):
        plan_job({**PARAMS, "name": "x", "checkpoint": "latest:nobody"})


def test_searched_bounds_and_fixed_values_are_checked_against_the_plugin(home):
    def tuning(**changes):
        params = {
            "name": "t",
            "dataset": 1,
            "is_tune": True,
            "tune_config": {"metric": "accuracy"},
            "hyperparameters": [{"name": "epochs", "type": "randint", "min": 1, "max": 3}],
        }
        params.update(changes)
        return params

    assert plan_job(tuning()).mode == "tuning"
    with pytest.raises(
        JobValidationError, match=r"hyperparameters \('epochs'\): the plugin rejects 0"
    ):
        plan_job(
            tuning(hyperparameters=[{"name": "epochs", "type": "randint", "min": 0, "max": 3}])
        )
    with pytest.raises(JobValidationError, match=r"the plugin rejects 'lbfgs'"):
        plan_job(
            tuning(
                hyperparameters=[
                    {"name": "optimizer", "type": "choice", "options": ["adam", "lbfgs"]}
                ]
            )
        )
    with pytest.raises(
        JobValidationError,
        match=r"hyperparameter.batch_size: Input should be greater than or equal to 1",
    ):
        plan_job(tuning(hyperparameter={"batch_size": 0}))

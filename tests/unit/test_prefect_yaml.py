from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_unified_deployment_points_at_the_train_flow(monkeypatch):
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {"unified", "retrain-digits-nightly", "retune-digits-weekly"} <= set(deployments)
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(ROOT)
    for deployment in deployments.values():
        assert load_flow_from_entrypoint(deployment["entrypoint"]).name == "train"
        assert deployment["work_pool"]["name"] == "unitrain"


def test_scheduled_retraining_continues_its_own_latest_model():
    from unitrain.job.params import validate_params

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    nightly = next(d for d in config["deployments"] if d["name"] == "retrain-digits-nightly")
    assert nightly["schedules"][0]["cron"]
    assert validate_params(nightly["parameters"]).checkpoint == "latest"


def test_scheduled_retuning_extends_its_own_study_from_its_best_model():
    from unitrain.job.params import validate_params

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    weekly = next(d for d in config["deployments"] if d["name"] == "retune-digits-weekly")
    assert weekly["schedules"][0]["cron"]
    params = validate_params(weekly["parameters"])
    assert params.is_tune and params.checkpoint == "best"
    assert params.tune_config is not None and params.tune_config.extend == params.name

"""The real ``train`` flow: Prefect (test harness API), a local Ray, MLflow on SQLite."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.stores import experiment_id, mlflow_client, register_model
from unitrain.errors import JobValidationError, UnitrainError
from unitrain.stores.registry import ModelRegistry

pytestmark = pytest.mark.e2e


def run(**params):
    from unitrain.flows.train import train

    state = train(**params, return_state=True)
    return state


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def flow_artifacts(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_training_job_registers_its_model_with_everything_logged(flow_env):
    name = unique("e2e:train,v1")
    state = run(name=name, dataset=1, hyperparameter={"epochs": 4, "batch_size": 64})
    assert state.is_completed(), state
    model_id = state.result()["model_id"]

    registry = ModelRegistry()
    record = registry.get(model_id)
    assert record.job == name.replace(":", "%3A").replace(",", "%2C")
    assert record.plugin == "digits_mlp" and record.dataset == "1"
    assert record.hyperparameters["epochs"] == 4 and record.hyperparameters["optimizer"] == "adam"
    assert record.metrics["validation_accuracy"] > 0.5

    mlflow_run = mlflow_client().get_run(record.run_id)
    assert mlflow_run.info.status == "FINISHED"
    history = mlflow_client().get_metric_history(record.run_id, "training/loss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert history[-1].value < history[0].value
    artifacts = {a.path for a in mlflow_client().list_artifacts(record.run_id, "model")}
    assert {"model/model.pt", "model/MLmodel", "model/data"} <= artifacts
    pictures = mlflow_client().list_artifacts(
        record.run_id, "visualizations/predictions/validation"
    )
    assert [a.path.rsplit("/", 1)[-1] for a in pictures] == ["00004.png"]

    artifacts = flow_artifacts(state.state_details.flow_run_id)
    job_bar = [
        a for a in artifacts if a.type == "progress" and a.description.startswith("Progress")
    ]
    assert len(job_bar) == 1 and job_bar[0].data == 100
    steps = [a for a in artifacts if a.type == "progress" and a.description.startswith("step ")]
    assert {a.description for a in steps} == {"step dataset", "step train", "step model_upload"}
    assert all(a.data == 100 for a in steps)
    assert any(a.type == "markdown" and f"`: model {model_id}" in a.data for a in artifacts)


def test_resume_continues_from_the_checkpoint_and_name_rules_hold(flow_env, tmp_path):
    name = unique("e2e-resume")
    first = run(name=name, dataset=1, hyperparameter={"epochs": 2}).result()["model_id"]
    second_name = unique("e2e-continued")
    second = run(
        name=second_name,
        dataset=1,
        checkpoint=first,
        hyperparameter={"epochs": 3, "learning_rate": 0.0001},
    ).result()["model_id"]
    registry = ModelRegistry()
    assert second > first
    run_record = mlflow_client().get_run(registry.get(second).run_id)
    assert run_record.data.tags["unitrain.checkpoint"] == str(first)

    import torch

    folder = registry.download(second, tmp_path)
    assert torch.load(folder / "model.pt", weights_only=True)["epochs_done"] == 5

    # The same name again is rejected before anything runs: no new MLflow run, no model.
    runs_before = len(mlflow_client().search_runs([experiment_id()]))
    state = run(name=name, dataset=1, hyperparameter={"epochs": 2})
    assert state.is_failed()
    with pytest.raises(JobValidationError, match="already finished"):
        state.result()
    assert len(mlflow_client().search_runs([experiment_id()])) == runs_before
    # ... unless the job continues itself, as scheduled retraining does.
    again = run(name=name, dataset=1, checkpoint="latest", hyperparameter={"epochs": 1})
    assert again.result()["model_id"] > second


def test_failing_plugin_marks_the_run_failed_and_registers_nothing(flow_env):
    base = run(name=unique("e2e-base"), dataset=1, hyperparameter={"epochs": 1}).result()[
        "model_id"
    ]
    registry = ModelRegistry()
    models_before = len(registry.models())
    name = unique("e2e-broken")
    state = run(
        name=name, dataset=1, checkpoint=base, hyperparameter={"epochs": 1, "hidden_units": 8}
    )
    assert state.is_failed()
    with pytest.raises(UnitrainError, match="hidden_units=64; the job asks for 8"):
        state.result()
    assert len(registry.models()) == models_before
    failed = mlflow_client().search_runs(
        [experiment_id()], filter_string=f"tags.`unitrain.job` = '{name}'"
    )
    assert [r.info.status for r in failed] == ["FAILED"]


def digits_sample(count: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[:count].astype(np.float32), digits.target[:count]


def test_a_registered_version_is_an_mlflow_model_that_mlflow_loads_and_serves(flow_env, tmp_path):
    import mlflow.pyfunc

    name = unique("e2e-served")
    model_id = run(name=name, dataset=1, hyperparameter={"epochs": 6}).result()["model_id"]
    features, labels = digits_sample(200)

    # MLflow's own loader (the PyTorch flavor), on raw pixels.
    model = mlflow.pyfunc.load_model(f"models:/unitrain/{model_id}", dst_path=str(tmp_path))
    assert model.metadata.signature.inputs.inputs[0].shape == (-1, 64)
    assert "pytorch" in model.metadata.flavors
    assert (np.asarray(model.predict(features)).argmax(1) == labels).mean() > 0.8

    # MLflow's model server answers over HTTP.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bin_dir = Path(sys.executable).parent  # as with the environment activated
    server = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", f"models:/unitrain/{model_id}"]
        + ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not come up"
            time.sleep(0.5)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"inputs": features[:20].tolist()},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        predicted = np.asarray(answer.json()["predictions"]).argmax(1)
        assert (predicted == labels[:20]).mean() > 0.8
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_version_made_before_mlflow_models_still_resumes(flow_env, tmp_path):
    """Versions registered as plain folders (the model file only) remain checkpoints."""
    first = run(name=unique("e2e-plain"), dataset=1, hyperparameter={"epochs": 2})
    registry = ModelRegistry()
    record = registry.get(first.result()["model_id"])
    plain = tmp_path / "plain"
    plain.mkdir()
    downloaded = registry.download(record.model_id, tmp_path / "first")
    (downloaded / "model.pt").rename(plain / "model.pt")
    old = register_model(
        record.job,
        plain,
        plugin="digits_mlp",
        hyperparameters=record.hyperparameters,
        metrics=record.metrics,
    )
    resumed = run(
        name=unique("e2e-from-plain"), dataset=1, checkpoint=old, hyperparameter={"epochs": 1}
    )
    import torch

    folder = registry.download(resumed.result()["model_id"], tmp_path / "resumed")
    assert torch.load(folder / "model.pt", weights_only=True)["epochs_done"] == 2 + 1

"""MLflow as the tests read it: MLflow's own client on the store unitrain uses now."""

from __future__ import annotations

from typing import Any

from unitrain.settings import settings
from unitrain.stores.mlflow_store import EXPERIMENT_NAME

__all__ = ["EXPERIMENT_NAME", "experiment_id", "mlflow_client", "new_run", "register_model"]


def mlflow_client(tracking_uri: str | None = None) -> Any:
    """MLflow's client on the configured store, or another (the tests check MLflow with
    MLflow)."""
    from mlflow import MlflowClient

    uri = tracking_uri or settings().mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(tracking_uri: str | None = None) -> str:
    """unitrain's experiment in that store (made if it is not there yet)."""
    from unitrain.stores.mlflow_store import MlflowStore
    from unitrain.stores.runs import RunStore

    return RunStore(MlflowStore(tracking_uri)).experiment_id()


def new_run() -> str:
    """A run of unitrain's experiment, made with MLflow's client."""
    return str(mlflow_client().create_run(experiment_id()).info.run_id)


def register_model(
    job: str,
    folder: Any,
    *,
    trial: str = "",
    plugin: str = "p",
    dataset: int = 1,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    run_id: str | None = None,
) -> int:
    """Publish the files in ``folder`` as a model of ``job`` (as a job would), into a run."""
    from pathlib import Path
    from types import SimpleNamespace

    from unitrain.stores.publisher import ModelPublisher, Publication

    folder = Path(folder)
    if not folder.exists():
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(b"\x00\x01")
    run_id = run_id or new_run()
    plan = SimpleNamespace(job=job, plugin=plugin, dataset=SimpleNamespace(id=dataset))
    publisher = ModelPublisher(plan, run_id, resumed=False)  # type: ignore[arg-type]
    return publisher.publish(
        Publication(run_id, str(folder), metrics or {}, hyperparameters or {}, trial)
    )

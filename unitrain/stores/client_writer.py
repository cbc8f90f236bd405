"""Writing through MLflow's public client: every store, a few batched calls per run.

Each create is made once: when its reply is lost, the run or version is found
again by its request key instead of made twice (``unitrain.stores.retry``).
Against a tracking server the runs of a batch are written side by side: each
run is about seven round trips, which one run at a time left the driver behind
short trials. A database the client opens itself (SQLite) takes one writer at
a time anyway; there the runs go one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from unitrain.stores.mlflow_store import TAG, Filter, MlflowStore
from unitrain.stores.retry import retrying_create
from unitrain.stores.writes import BestMark, FinishedRun, ModelVersion, Written

__all__ = ["ClientWriter"]

_BATCH = 1000  # MLflow's limit of metrics per log_batch
#: runs written at a time (a tracking server serves several clients anyway)
_SIDE_BY_SIDE = 4


class ClientWriter:
    """Writes runs and marks through MLflow's public client."""

    def __init__(self, store: MlflowStore) -> None:
        self.store = store

    def write_many(self, runs: Sequence[FinishedRun], *, again: bool = False) -> list[Written]:
        """Each run whole, in their order; a run that fails fails the batch after the others
        were tried (a retry with ``again`` finds those that took effect)."""
        if len(runs) < 2 or not self.store.served:
            return [self._write(run, again) for run in runs]
        if any(run.model is not None for run in runs):  # once, before the runs race to make it
            self.store.ensure_registered_model()
        with ThreadPoolExecutor(min(_SIDE_BY_SIDE, len(runs))) as pool:
            futures = [pool.submit(self._write, run, again) for run in runs]
        return [future.result() for future in futures]

    def _write(self, run: FinishedRun, again: bool) -> Written:
        from mlflow.entities import Metric, Param

        client = self.store.client
        tags = {**run.tags, TAG.REQUEST: run.request}
        created = self.create_run(
            run.experiment_id,
            request=run.request,
            run_name=run.name,
            start_time=run.start_ms,
            tags=tags,
            again=again,
        )
        run_id = str(created.info.run_id)
        for folder, path in run.uploads:
            client.log_artifacts(run_id, folder, artifact_path=path)
        metrics = [Metric(*line) for line in run.metrics]
        params = [Param(k, v) for k, v in run.params.items()]
        for start in range(0, max(len(metrics), 1), _BATCH):
            chunk = metrics[start : start + _BATCH]
            if chunk or params:
                client.log_batch(run_id, metrics=chunk, params=params)
                params = []
        client.set_terminated(run_id, run.status, end_time=run.end_ms)
        model_id = None
        if run.model is not None:
            self.store.ensure_registered_model()
            source = f"{created.info.artifact_uri}/{run.model.artifact_path}"
            model_id = self.create_version(run.model, source, run_id, run.request, again=again)
        return Written(run_id, model_id)

    def create_run(
        self, experiment_id: str, *, request: str, again: bool = False, **kwargs: Any
    ) -> Any:
        """``create_run``, never made twice: a lost reply is found by the request key."""
        client = self.store.client
        tags = {**kwargs.pop("tags", {}), TAG.REQUEST: request}

        def find() -> Any:
            found = client.search_runs(
                [experiment_id], filter_string=Filter.tag(TAG.REQUEST, request), max_results=1
            )
            return found[0] if found else None

        if again and (existing := find()) is not None:
            return existing
        return retrying_create(
            lambda: client.create_run(experiment_id, tags=tags, **kwargs),
            find,
            store=self.store.tracking_uri,
            what=f"creating run {kwargs.get('run_name', '')}",
            budget_s=self.store.store_retry_s,
        )

    def create_version(
        self, model: ModelVersion, source: str, run_id: str, request: str, *, again: bool = False
    ) -> int:
        """``create_model_version``, never made twice; returns the model ID."""
        client = self.store.client
        tags = {**model.tags, TAG.REQUEST: request}

        def find() -> int | None:
            found = client.search_model_versions(
                Filter.versions(model.registered_model, REQUEST=request), max_results=1
            )
            return int(found[0].version) if found else None

        if again and (existing := find()) is not None:
            return existing
        version = retrying_create(
            lambda: client.create_model_version(
                model.registered_model,
                source=source,
                run_id=run_id,
                description=model.description,
                tags=tags,
            ),
            find,
            store=self.store.tracking_uri,
            what=f"registering the model of run {run_id}",
            budget_s=self.store.store_retry_s,
        )
        return version if isinstance(version, int) else int(version.version)

    def mark_best(self, mark: BestMark) -> None:
        client = self.store.client
        # The new mark first: a version that is gone fails before anything changed.
        client.set_model_version_tag(mark.registered_model, str(mark.version), mark.tag, "true")
        client.set_registered_model_alias(mark.registered_model, mark.alias, str(mark.version))
        for version in mark.others:
            client.delete_model_version_tag(mark.registered_model, str(version), mark.tag)

"""The model registry: every trained model is a version of one MLflow registered model.

A model's ID is its version number in the registered model ``unitrain``
(``UNITRAIN_REGISTERED_MODEL`` renames it), so IDs are integers, unique across
plugins and jobs, and any of them can be the ``checkpoint`` of a later job.
Each version is tagged with the job name, plugin, dataset, trial ID,
hyperparameters and final metrics (see ``unitrain.stores.publisher``, the one
place versions are made).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unitrain.errors import NotFoundError, StoreUnavailableError
from unitrain.job.records import Checkpoint, ModelRecord
from unitrain.stores.client_writer import ClientWriter
from unitrain.stores.mlflow_store import TAG, Filter, MlflowStore
from unitrain.stores.retry import is_transient, scrub
from unitrain.stores.writers import writer_for
from unitrain.stores.writes import BestMark, ModelVersion

__all__ = ["BEST_ALIAS_PREFIX", "ModelRecord", "ModelRegistry", "best_alias"]

BEST_ALIAS_PREFIX = "best-"
#: versions per search request (MLflow's own default page)
_PAGE = 1000


class ModelRegistry:
    """Finds, makes, marks and downloads the model versions of one MLflow store."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        store_retry_s: float | None = None,
        store: MlflowStore | None = None,
    ) -> None:
        self.store = store or MlflowStore(tracking_uri, store_retry_s=store_retry_s)
        self._client = self.store.client

    @property
    def name(self) -> str:
        """The registered model whose versions are the model IDs."""
        return self.store.registered_model

    @property
    def tracking_uri(self) -> str:
        return self.store.tracking_uri

    @property
    def shown_uri(self) -> str:
        return self.store.shown_uri

    # -- making and marking ----------------------------------------------------

    def create_version(self, model: ModelVersion, *, source: str, run_id: str, request: str) -> int:
        """Register the files at ``source`` as a new version, never twice for one ``request``."""
        self.store.ensure_registered_model()
        return ClientWriter(self.store).create_version(model, source, run_id, request)

    def mark_best(self, model_id: int, job: str) -> None:
        """Tag a version as its job's best (and no other), and point ``best-<job>`` at it."""
        # Only the versions tagged best: a job of a thousand trials has a thousand.
        others = tuple(
            int(version.version)
            for version in self._search(job, best_only=True)
            if version.tags.get(TAG.BEST) == "true" and int(version.version) != model_id
        )
        mark = BestMark(self.name, model_id, others, best_alias(job))
        writer_for(self.store).mark_best(mark)

    def set_alias(self, alias: str, model_id: int) -> None:
        """Point ``alias`` at a version (MLflow moves it from the one holding it)."""
        self.store.ensure_registered_model()
        self._client.set_registered_model_alias(self.name, alias, str(model_id))

    def holder_of(self, alias: str) -> int | None:
        """The version ``alias`` points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self._client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as error:
            if is_transient(error):
                raise StoreUnavailableError(
                    f"the MLflow store at {self.shown_uri} could not be read: {scrub(str(error))}"
                ) from None
            return None

    def aliases(self) -> dict[str, int]:
        """Every alias of the registered model -> its version (one read, however many)."""
        from mlflow.exceptions import MlflowException

        try:
            model = self._client.get_registered_model(self.name)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def tag(self, model_id: int, key: str, value: str) -> None:
        """Set a tag of a version (idempotent)."""
        self._client.set_model_version_tag(self.name, str(model_id), key, value)

    # -- finding ---------------------------------------------------------------

    def get(self, model_id: int) -> ModelRecord:
        from mlflow.exceptions import MlflowException

        try:
            version = self._client.get_model_version(self.name, str(model_id))
        except StoreUnavailableError:
            raise
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST" and is_transient(error):
                raise StoreUnavailableError(
                    f"the MLflow store at {self.shown_uri} could not be read: {scrub(str(error))}"
                ) from None
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise StoreUnavailableError(
                    f"the MLflow store at {self.shown_uri} failed to look up model "
                    f"{model_id}: {error.error_code}"
                ) from None
            raise NotFoundError(
                f"checkpoint: model {model_id} does not exist in the registry "
                f"({self.name!r} at {self.shown_uri}); see 'unitrain models list'"
            ) from None
        return _record(version)

    def models(self, job: str | None = None, *, newest: int | None = None) -> list[ModelRecord]:
        """Every model (of one job), oldest first; with ``newest``, only that many of the
        newest (one page: a registry of any size costs the same)."""
        records = [_record(v) for v in self._search(job, max_results=newest)]
        return sorted(records, key=lambda r: r.model_id)

    def job_exists(self, job: str) -> bool:
        return self.latest_of(job) is not None

    def latest_of(self, job: str) -> int | None:
        newest = self._search(job, max_results=1)
        return int(newest[0].version) if newest else None

    def best_of(self, job: str) -> int | None:
        """The model ``best-<job>`` points at, or None."""
        return self.holder_of(best_alias(job))

    def registered_trials(self, job: str, job_run: str) -> dict[str, int]:
        """Trial ID -> model ID of the models already registered for one job run."""
        return {
            v.tags.get(TAG.TRIAL, ""): int(v.version)
            for v in self._search(job, job_run=job_run)
            if v.tags.get(TAG.JOB_RUN) == job_run
        }

    def _search(
        self,
        job: str | None,
        max_results: int | None = None,
        *,
        best_only: bool = False,
        job_run: str | None = None,
    ) -> list[Any]:
        """Model versions, newest first, all pages (or the first ``max_results``)."""
        tags = {"BEST": "true"} if best_only else {}
        if job_run is not None:
            tags["JOB_RUN"] = job_run
        filter_here = False
        if job is not None:
            if Filter.tag(TAG.JOB, job) is None:  # both quotes in the name: filter here instead
                filter_here, max_results = True, None
            else:
                tags["JOB"] = job
        query = Filter.versions(self.name, **tags)
        found: list[Any] = []
        token = None
        while True:
            page = self._client.search_model_versions(
                query,
                max_results=min(max_results or _PAGE, _PAGE),
                order_by=["version_number DESC"],
                page_token=token,
            )
            found.extend(v for v in page if not filter_here or v.tags.get(TAG.JOB) == job)
            token = page.token
            if not token or (max_results and len(found) >= max_results):
                return found[:max_results] if max_results else found

    # -- downloading -----------------------------------------------------------

    def download(self, model_id: int, destination: str | Path) -> Path:
        """Download a model's files; return the local folder."""
        import mlflow

        record = self.get(model_id)
        Path(destination).mkdir(parents=True, exist_ok=True)
        local = self.store.retrying(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=record.source,
                dst_path=str(destination),
                tracking_uri=self.tracking_uri,
            ),
            f"downloading model {model_id}",
        )
        return Path(local)

    def resolve_checkpoint(
        self, model_id: int | None, destination: str | Path
    ) -> Checkpoint | None:
        """Download a job's ``checkpoint`` model, as the plugin receives it."""
        if model_id is None:
            return None
        path = self.download(model_id, destination)
        return Checkpoint(model_id, str(path), self.get(model_id))


def best_alias(job: str) -> str:
    """``best-<job>``; MLflow aliases allow letters, digits, ``-`` and ``_`` only.

    A name with other characters gets a short digest, so two jobs never share an alias.
    """
    import hashlib

    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in job)
    if safe != job:
        safe = f"{safe[:200]}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"
    return BEST_ALIAS_PREFIX + safe


def _record(version: Any) -> ModelRecord:
    tags = version.tags or {}
    return ModelRecord(
        model_id=int(version.version),
        job=tags.get(TAG.JOB, ""),
        plugin=tags.get(TAG.PLUGIN, ""),
        dataset=tags.get(TAG.DATASET, ""),
        trial_id=tags.get(TAG.TRIAL, ""),
        hyperparameters=json.loads(tags.get(TAG.HYPERPARAMETERS, "{}")),
        metrics=json.loads(tags.get(TAG.METRICS, "{}")),
        run_id=version.run_id or "",
        source=version.source,
        best=tags.get(TAG.BEST) == "true",
        created=int(version.creation_timestamp or 0),
        job_run=tags.get(TAG.JOB_RUN, ""),
    )

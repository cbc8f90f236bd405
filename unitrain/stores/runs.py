"""A job's MLflow runs: the job's own run, its trials' child runs, what goes into them.

:class:`RunStore` makes, fills and ends runs, and finds the runs of a job
again (a resumed job continues its run; a job run after a crash ends what the
dead one left RUNNING). A run that ended before it was made (a short trial)
is written whole by the store's writer (:meth:`RunStore.write_finished`).
Every unitrain run carries the tags of :func:`run_tags`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unitrain.job.plan import JobPlan
from unitrain.stores.client_writer import ClientWriter
from unitrain.stores.mlflow_store import TAG, Filter, MlflowStore, is_local, new_request_key
from unitrain.stores.writers import writer_for
from unitrain.stores.writes import FinishedRun, Written

__all__ = ["RunStore", "run_tags"]

_BATCH = 1000  # MLflow's limit of metrics per log_batch


def run_tags(
    plan: JobPlan, tags: dict[str, str] | None, parent_run_id: str | None
) -> dict[str, str]:
    """The tags of a run of ``plan``'s job, as every unitrain run has them."""
    all_tags = {
        TAG.JOB: plan.job,
        TAG.PLUGIN: plan.plugin,
        TAG.DATASET: str(plan.dataset.id),
        TAG.CHECKPOINT: str(plan.checkpoint_id or ""),
        **(tags or {}),
    }
    if parent_run_id:
        all_tags[TAG.PARENT] = parent_run_id
    return all_tags


class RunStore:
    """The runs of unitrain's experiment in one MLflow store."""

    def __init__(self, store: MlflowStore | None = None) -> None:
        self.store = store or MlflowStore()
        self._client = self.store.client
        # run ID -> artifact URI of the runs made here (spares a lookup per trial)
        self._artifact_uris: dict[str, str] = {}

    @property
    def tracking_uri(self) -> str:
        return self.store.tracking_uri

    def experiment_id(self) -> str:
        return self.store.experiment_id()

    # -- making and ending runs ---------------------------------------------

    def start_run(
        self,
        plan: JobPlan,
        *,
        run_name: str,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        start_time_ms: int | None = None,
    ) -> str:
        """Create a run of ``plan``'s job, tagged as every unitrain run is; return its ID."""
        run = ClientWriter(self.store).create_run(
            self.experiment_id(),
            request=new_request_key(),
            run_name=run_name,
            start_time=start_time_ms,
            tags=run_tags(plan, tags, parent_run_id),
        )
        self._artifact_uris[str(run.info.run_id)] = str(run.info.artifact_uri)
        return str(run.info.run_id)

    def write_finished(self, runs: Sequence[FinishedRun], *, again: bool = False) -> list[Written]:
        """Write runs that have ended, with their model versions, through the store's writer."""
        return writer_for(self.store).write_many(runs, again=again)

    def end_run(self, run_id: str, status: str, *, end_time_ms: int | None = None) -> None:
        """End a run as ``FINISHED``, ``FAILED`` or ``KILLED``."""
        self._client.set_terminated(run_id, status, end_time=end_time_ms)

    def reopen_run(self, run_id: str) -> None:
        """Mark a run RUNNING again (a resumed job continues its own run)."""
        self._client.update_run(run_id, status="RUNNING")

    def end_stale_runs(self, job: str, status: str = "KILLED") -> list[str]:
        """End every run of ``job`` still marked RUNNING; return their IDs.

        Called while the job's name is held: no run of the job can be live then,
        so a RUNNING one was left by a process that died.
        """
        found = self._client.search_runs(
            [self.experiment_id()],
            filter_string=Filter.runs_of_job(job, status="RUNNING"),
            max_results=5000,
        )
        runs = [run for run in found if run.data.tags.get(TAG.JOB) == job]
        for run in runs:
            self._client.set_terminated(run.info.run_id, status)
        return [str(run.info.run_id) for run in runs]

    # -- what goes into a run -------------------------------------------------

    def log(
        self,
        run_id: str,
        *,
        metrics: Sequence[tuple[str, float, int, int]] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Metrics (key, value, timestamp in ms, step), parameters and tags, in few writes.

        MLflow takes a metric or parameter sent again as the same one, so a
        retried write adds nothing.
        """
        from mlflow.entities import Metric, Param, RunTag

        lines = [Metric(*line) for line in metrics]
        extra = {
            "params": [Param(k, v) for k, v in (params or {}).items()],
            "tags": [RunTag(k, v) for k, v in (tags or {}).items()],
        }
        for start in range(0, max(len(lines), 1), _BATCH):
            chunk = lines[start : start + _BATCH]
            if chunk or extra["params"] or extra["tags"]:
                self._client.log_batch(run_id, metrics=chunk, **extra)
                extra = {"params": [], "tags": []}

    def log_dict(self, run_id: str, data: Any, path: str) -> None:
        self._client.log_dict(run_id, data, path)

    def log_figure(self, run_id: str, figure: Any, path: str) -> None:
        self._client.log_figure(run_id, figure, path)

    def artifact_uri(self, run_id: str) -> str:
        """A run's artifact URI (remembered for the runs made here)."""
        if run_id not in self._artifact_uris:
            self._artifact_uris[run_id] = str(self._client.get_run(run_id).info.artifact_uri)
        return self._artifact_uris[run_id]

    def log_artifacts(
        self, run_id: str, folder: str | Path, artifact_path: str | None = None
    ) -> None:
        """Upload a folder's files into a run's artifacts (under ``artifact_path``).

        An artifact store on this machine is a folder: the files are copied into
        it directly, which spares MLflow's run lookup per call (a trial's share
        of its bookkeeping). Other stores go through MLflow.
        """
        uri = self.artifact_uri(run_id)
        if not is_local(uri):
            self._client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)
            return
        from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

        LocalArtifactRepository(uri).log_artifacts(str(folder), artifact_path)

    def log_files(
        self, run_id: str, files: dict[str, bytes], artifact_path: str | None = None
    ) -> None:
        """Small files made in memory (plots), under ``artifact_path``."""
        with tempfile.TemporaryDirectory() as folder:
            for name, data in files.items():
                (Path(folder) / name).write_bytes(data)
            self.log_artifacts(run_id, folder, artifact_path)

    def read_json(self, run_id: str, path: str) -> Any:
        """A JSON artifact of a run (``trials.json``, ``job.json``)."""
        import mlflow

        uri = f"{self.artifact_uri(run_id)}/{path}"
        text = self.store.retrying(
            lambda: mlflow.artifacts.load_text(uri), f"reading {path} of run {run_id}"
        )
        return json.loads(text)

    # -- finding runs ---------------------------------------------------------

    def get(self, run_id: str) -> Any:
        """A run as MLflow returns it (its info, params, metrics and tags)."""
        return self._client.get_run(run_id)

    def children(self, run_id: str, *, status: str | None = None) -> list[Any]:
        """The child runs of ``run_id`` (a search's trials)."""
        return list(
            self._client.search_runs(
                [self.experiment_id()],
                filter_string=Filter.children_of(run_id, status=status),
                max_results=50_000,
            )
        )

    def latest_job_run(
        self, job: str, *, mode: str, status: str, before_ms: int | None = None
    ) -> Any | None:
        """The latest own run (not a trial's) of ``job`` in ``mode`` with ``status``."""
        if Filter.tag(TAG.JOB, job) is None:
            return None  # a name with both quotes cannot be asked for
        runs = self._client.search_runs(
            [self.experiment_id()],
            filter_string=Filter.runs_of_job(job, status=status, mode=mode, before_ms=before_ms),
            order_by=["attributes.start_time DESC"],
            max_results=10,
        )
        for run in runs:
            tags = run.data.tags
            if tags.get(TAG.MODE) == mode and TAG.PARENT not in tags:
                return run
        return None

"""The function every Ray Tune trial runs: the plugin, through :func:`run_plugin`.

Each trial validates its configuration against the plugin's schema (defaults
filled in), runs the plugin with its records going into the trial's folder
(the search's driver carries them to the trial's MLflow run: a trial never
waits on the store), writes its :class:`~unitrain.tune.results.TrialResult`
there, and reports its final metrics once more so the searcher and scheduler
see the optimised metric.

Checkpoints travel with reports (``unitrain.checkpoints``): each
``run.report`` goes to Ray Tune's ``tune.report`` with the folder
``run.checkpoint_output`` as its checkpoint when the plugin saved something
new there, persisted in the job's storage. A trial that starts with a
checkpoint continues from it, and its plugin gets it as ``checkpoint``:

- a trial retried after a failure (``max_failures``), or run again when its
  job resumes, continues from its own latest checkpoint;
- a trial that PBT exploits continues from the donor's, with its new
  hyperparameters; the trial's lineage records the donor, the iteration and
  what changed.

A trial that finished before its job was interrupted is not run again when the
job resumes: its result file says so, and it reports what it reported then.
With ``tune_config.trial_timeout_s`` a watchdog ends a trial that runs too
long: it records the timeout, then ends the trial's process (a hung plugin
cannot be stopped any other way), which Ray Tune sees as a failed trial.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from unitrain.checkpoints import FolderWatch
from unitrain.job.plan import TuningPlan
from unitrain.job.records import Checkpoint, Dataset
from unitrain.mlflow_model import add_generic_wrapper
from unitrain.plugin_loader import load_plugin
from unitrain.plugin_runner import PluginCall, run_plugin
from unitrain.reporting.plugin_log import PluginLog
from unitrain.run_sinks import FolderSink
from unitrain.runtime.worker_env import load_worker_secrets
from unitrain.stores.catalog import DatasetCatalog
from unitrain.tune.results import TrialResult

__all__ = ["LINEAGE_KEY", "TrialSetup", "make_trainable"]

#: the key of the first report after a trial continued from another's state: says which
LINEAGE_KEY = "unitrain_lineage"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job shares; picklable."""

    plan: TuningPlan
    dataset: Dataset
    trials_root: str
    #: the model every trial starts from, downloaded once by the driver
    checkpoint: Checkpoint | None = None
    #: Ray Tune's experiment folder: each trial's checkpoints are in ``<trial ID>/``
    tune_root: str = ""

    def folder(self, trial_id: str) -> Path:
        return Path(self.trials_root) / trial_id


def make_trainable(setup: TrialSetup) -> Callable[[dict[str, Any]], None]:
    """The function trainable for this job's trials."""

    def unitrain_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        load_worker_secrets()
        for name in ("ray.train", "ray.tune.trainable"):
            # A line per checkpoint made and restored: the trial's own log says less, better.
            logging.getLogger(name).setLevel(logging.WARNING)
        plan = setup.plan
        metric = plan.config.metrics[0]  # (a returned number is the first metric's value)
        trial_id = tune.get_context().get_trial_id()
        folder = setup.folder(trial_id)
        output = folder / "model"
        proposed = plan.trial_config(config)
        validated = load_plugin(plan.plugin).validate_hyperparameter(
            {**plan.hyperparameter, **proposed}
        )
        # A conditional entry whose condition failed is absent, even where the
        # plugin's schema has a default for it.
        absent = set(plan.searched_names) - set(proposed)
        hyperparameter = {k: v for k, v in validated.items() if k not in absent}
        earlier = TrialResult.load(folder)
        if (
            earlier is not None
            and earlier.status == "FINISHED"
            and earlier.hyperparameters == hyperparameter
        ):
            # Finished before the job was interrupted: keep that result and its model.
            tune.report(dict(earlier.metrics))
            return
        start, lineage = _starting_point(
            trial_id, tune.get_checkpoint(), earlier, hyperparameter, Path(setup.tune_root)
        )
        # (the trial's records of earlier attempts stay: its MLflow run goes on)
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        dataset = setup.dataset
        if not Path(dataset.path).exists():  # prepared on another node: prepare it here
            dataset = DatasetCatalog().prepare(plan.dataset)
        started = TrialResult(
            trial_id,
            "RUNNING",
            hyperparameters=hyperparameter,
            node=ray.get_runtime_context().get_node_id(),
            started_at=earlier.started_at if start is not None and earlier else time.time(),
            checkpoint=earlier.checkpoint if earlier else "",
            checkpoint_iteration=earlier.checkpoint_iteration if earlier else 0,
            lineage=[*(earlier.lineage if earlier else []), *([lineage] if lineage else [])],
        )
        started.save(folder)
        reporter = _Reporter(setup, trial_id, output, started, start, lineage)
        call = PluginCall(
            plan=plan,
            dataset=dataset,
            hyperparameter=hyperparameter,
            output=output,
            sink=FolderSink(folder / "record"),
            checkpoint=start or setup.checkpoint,
            metric=metric,
            required_metric=metric,
            trial_id=trial_id,
            reporter=reporter,
            lines=PluginLog(folder / "record"),
        )
        try:
            with _Watchdog(plan.config.trial_timeout_s, reporter, folder):
                result = run_plugin(call)
        except BaseException as error:
            stopped = isinstance(error, SystemExit | KeyboardInterrupt)
            saved = output.is_dir() and any(output.iterdir())
            reporter.result.ended(
                "KILLED" if stopped else "FAILED",
                model_dir=str(output) if saved else "",
                error="" if stopped else str(error),
                ended_at=time.time(),
            ).save(folder)
            raise
        reporter.result.ended(
            "FINISHED", model_dir=result.model_dir, metrics=result.metrics, ended_at=time.time()
        ).save(folder)
        if all(name in result.metrics for name in plan.config.metrics):
            # The searcher and the scheduler learn the trial's final values from
            # its last report. Without them (the plugin reported them to Ray
            # itself), Ray's last result already carries them.
            reporter.final(dict(result.metrics))

    return unitrain_trial


def _starting_point(
    trial_id: str,
    restored: Any,
    earlier: TrialResult | None,
    hyperparameter: dict[str, Any],
    tune_root: Path,
) -> tuple[Checkpoint | None, dict[str, Any] | None]:
    """What the trial continues from, and the lineage entry it adds (a clone's: None else).

    Ray restores a trial from the checkpoint it knows (its own after a failure
    or a resume; PBT's donor's after an exploit). Ray's record of a trial's
    checkpoints is saved every few seconds, the trial's own after every
    checkpoint: the newer of the two is the trial's own latest.
    """
    from_ray = _as_checkpoint(restored)
    if from_ray is not None and from_ray.trial_id and from_ray.trial_id != trial_id:
        if not _has_payload(Path(from_ray.path)):  # pruned by the donor meanwhile: its newest
            from_ray = _newest(tune_root / from_ray.trial_id) or from_ray
        before = earlier.hyperparameters if earlier is not None else {}
        changed = {
            key: [before.get(key), value]
            for key, value in hyperparameter.items()
            if key in before and before[key] != value
        }
        entry = {"from": from_ray.trial_id, "iteration": from_ray.iteration, "changed": changed}
        return from_ray, entry
    own = None
    if earlier is not None and earlier.checkpoint and _has_payload(Path(earlier.checkpoint)):
        own = Checkpoint(
            model_id=None,
            path=earlier.checkpoint,
            iteration=earlier.checkpoint_iteration,
            trial_id=trial_id,
        )
    if from_ray is not None and not _has_payload(Path(from_ray.path)):
        from_ray = None  # pruned since Ray wrote down which it was (see _Reporter._prune)
    candidates = [c for c in (from_ray, own) if c is not None]
    if not candidates:
        return None, None
    return max(candidates, key=lambda c: c.iteration), None


def _newest(trial_folder: Path) -> Checkpoint | None:
    """The newest checkpoint still holding its files in a trial's Ray folder."""
    for folder in sorted(trial_folder.glob("checkpoint_*"), reverse=True):
        if _has_payload(folder):
            try:
                metadata = json.loads((folder / ".metadata.json").read_text())
            except (OSError, ValueError):
                metadata = {}
            return Checkpoint(
                model_id=None,
                path=str(folder),
                iteration=int(metadata.get("iteration", 0)),
                trial_id=str(metadata.get("trial_id", trial_folder.name)),
            )
    return None


def _has_payload(folder: Path) -> bool:
    """Whether a checkpoint folder still holds the plugin's files (not only Ray's metadata)."""
    return folder.is_dir() and any(entry.name != ".metadata.json" for entry in folder.iterdir())


def _as_checkpoint(restored: Any) -> Checkpoint | None:
    """A Ray Tune checkpoint as the plugin receives one (a local folder)."""
    if restored is None:
        return None
    metadata = restored.get_metadata() or {}
    path = restored.path
    if not os.path.isdir(path):  # storage elsewhere than this machine's file system
        path = restored.to_directory()
    return Checkpoint(
        model_id=None,
        path=str(path),
        iteration=int(metadata.get("iteration", 0)),
        trial_id=str(metadata.get("trial_id", "")),
    )


class _Reporter:
    """``run.report`` of a trial: to Ray Tune, with the model folder as the checkpoint when it
    changed, and the trial's latest checkpoint written down as soon as Ray has it."""

    def __init__(
        self,
        setup: TrialSetup,
        trial_id: str,
        output: Path,
        result: TrialResult,
        start: Checkpoint | None,
        lineage: dict[str, Any] | None,
    ) -> None:
        self.setup = setup
        self.trial_id = trial_id
        self.output = output
        self.folder = setup.folder(trial_id)
        self.result = result
        self.iteration = start.iteration if start is not None else 0
        self._watch = FolderWatch(output)
        self._note = _lineage_note(lineage) if lineage else ""
        self._lock = threading.Lock()

    def __call__(self, metrics: dict[str, Any]) -> None:
        from ray import tune

        self.iteration += 1
        checkpoint = None
        if self.output.is_dir() and any(self.output.iterdir()):
            add_generic_wrapper(self.output, self.setup.plan.plugin)
            if self._watch.changed():
                checkpoint = tune.Checkpoint.from_directory(str(self.output))
                checkpoint.set_metadata({"trial_id": self.trial_id, "iteration": self.iteration})
        payload = dict(metrics)
        if self._note:
            payload[LINEAGE_KEY], self._note = self._note, ""
        tune.report(payload, checkpoint=checkpoint)
        if checkpoint is not None:
            self._remember_checkpoint()

    def final(self, metrics: dict[str, Any]) -> None:
        """The last report, with the final metrics (the model is the trial's result)."""
        from ray import tune

        tune.report(metrics)

    def _remember_checkpoint(self) -> None:
        """The checkpoint Ray just persisted, in the trial's own record; older ones pruned."""
        persisted = sorted(
            (Path(self.setup.tune_root) / self.trial_id).glob("checkpoint_*"),
            key=lambda path: path.name,
        )
        if not persisted:
            return
        with self._lock:
            self.result = replace(
                self.result, checkpoint=str(persisted[-1]), checkpoint_iteration=self.iteration
            )
            self.result.save(self.folder)
        self._prune(persisted[: -self.setup.plan.config.checkpoints_kept])

    @staticmethod
    def _prune(older: list[Path]) -> None:
        """Empty the checkpoints beyond ``tune_config.keep_checkpoints``, keeping their folders.

        Ray writes down a trial's checkpoints every few seconds: a job killed
        between a checkpoint and that record is resumed by Ray from the
        checkpoint it wrote down, which must still be there (Ray's own
        ``num_to_keep`` deletes it, and the trial then fails to restore). An
        emptied folder is restored from as it is, and the trial goes on from
        its own record of its latest checkpoint instead.
        """
        for folder in older:
            for entry in folder.iterdir():
                if entry.name == ".metadata.json":
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _lineage_note(entry: dict[str, Any]) -> str:
    """``"00002@4: lr 0.01 -> 0.02"``: what the trial table shows of a clone."""
    changed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in entry["changed"].items())
    return f"{entry['from']}@{entry['iteration']}" + (f": {changed}" if changed else "")


class _Watchdog:
    """Ends a trial that runs longer than ``timeout_s`` (None: never)."""

    def __init__(self, timeout_s: float | None, reporter: _Reporter, folder: Path) -> None:
        self.timeout_s = timeout_s
        self.reporter = reporter
        self.folder = folder
        self._done = threading.Event()

    def __enter__(self) -> _Watchdog:
        if self.timeout_s is not None:
            threading.Thread(
                target=self._watch, args=(self.timeout_s,), name="trial-timeout", daemon=True
            ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self, timeout_s: float) -> None:
        if self._done.wait(timeout_s):
            return
        message = f"timed out after {timeout_s:g} s (tune_config.trial_timeout_s)"
        self.reporter.result.ended("FAILED", error=message, ended_at=time.time()).save(self.folder)
        # A thread cannot be stopped: the trial's process goes, and Ray Tune
        # records the trial as failed (and retries it under max_failures).
        os._exit(3)

"""The private parts of Ray, Prefect, prefect-ray, HyperOpt and Python that unitrain relies on.

Every use of a library's private API is here, and nowhere else. Each one is
gated on the releases its test in ``tests/unit/test_compat.py`` covers
(:data:`COVERED`): with any other release it does nothing, or takes the
public path, and says so once in a warning, so that an upgrade degrades a
speed-up instead of breaking a job. Nothing is patched when this module is
imported; the patches are installed by two calls made at known moments:

- :func:`install_flow_patches`, when a flow run enters unitrain's task runner;
- :func:`install_search_patches`, when a search starts (it imports Ray Tune,
  which a training job never needs).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = [
    "COVERED",
    "covered",
    "drain_prefect_workers",
    "exit_now",
    "hyperopt_add_evaluated",
    "install_flow_patches",
    "install_search_patches",
    "local_gpu_count",
    "optuna_trial_of",
    "prefect_api_only_environment",
    "previews_random_draws",
    "ray_init_keeping_sigterm",
    "ray_preset_variants",
    "ray_seeded_rng",
    "ray_variants",
    "run_prefect_task_between",
    "set_tuner_callbacks",
    "set_tuner_stopper",
]

log = logging.getLogger(__name__)

#: package -> the releases (major.minor) whose private APIs the tests cover
COVERED: dict[str, frozenset[str]] = {
    "ray": frozenset({"2.60"}),
    "prefect": frozenset({"3.9"}),
    "prefect-ray": frozenset({"0.6"}),
    "hyperopt": frozenset({"0.3"}),
    "python": frozenset({"3.11", "3.12", "3.13"}),
}

_WARNED: set[str] = set()


def _release(package: str) -> str:
    if package == "python":
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        return ".".join(version(package).split(".")[:2])
    except PackageNotFoundError:
        return "absent"


def covered(package: str, what: str) -> bool:
    """Whether the installed ``package`` is a release whose private API ``what`` is tested
    with; warns once per ``what`` when it is not."""
    release = _release(package)
    if release in COVERED[package]:
        return True
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(
            f"unitrain: {what} is tested with {package} "
            f"{', '.join(sorted(COVERED[package]))}, not {release}; left out",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


# -- installed at known moments ----------------------------------------------------------


def install_flow_patches() -> None:
    """What a flow run needs patched: called when it enters unitrain's task runner."""
    _end_flow_heartbeats_without_waiting()


def install_search_patches(is_secret: Callable[[str], bool]) -> None:
    """What a Ray Tune search needs patched: called when a search starts."""
    _stop_tune_forwarding_credentials(is_secret)
    _keep_starting_trial_actors()
    _choose_waiting_trials_without_walking_every_trial()
    _quiet_missing_result_files()


# -- Prefect -------------------------------------------------------------------------------


def drain_prefect_workers(timeout_s: float) -> None:
    """Send buffered Prefect logs and events, and stop their background workers."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)


def _end_flow_heartbeats_without_waiting() -> None:
    """Let a flow run end without waiting up to a second for its heartbeat thread.

    Prefect sends a flow run's heartbeats from a thread that sleeps in steps
    of a second, and a synchronous flow joins that thread when it ends: every
    job's end waited for the thread's current second to run out (0.5 s on
    average). The thread is a daemon that stops by itself within that second,
    and no heartbeat is sent for a run in a final state; Prefect's own async
    engine does not join it either (``join_on_exit=False``).
    """
    if not covered("prefect", "ending a flow run without joining its heartbeat thread"):
        return
    from prefect import flow_engine

    send = flow_engine._send_heartbeats
    if getattr(send, "_unitrain", False):
        return

    @contextmanager
    def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
        with send(engine, join_on_exit=False):
            yield

    send_heartbeats._unitrain = True  # type: ignore[attr-defined]
    send_heartbeats._original = send  # type: ignore[attr-defined]
    flow_engine._send_heartbeats = send_heartbeats  # type: ignore[assignment]


def prefect_api_only_environment() -> dict[str, str]:
    """Settings of an API-only Prefect server, like Prefect's own temporary one: no UI, and
    (through two private settings) none of its background services."""
    environment = {"PREFECT_UI_ENABLED": "0"}
    if covered("prefect", "Prefect's settings of a temporary server"):
        environment.update({"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
    return environment


def run_prefect_task_between(before: Callable[[], Any], after: Callable[[], Any]) -> Any:
    """prefect-ray's function that runs a task in a Ray worker, with ``before()`` and
    ``after()`` around it; a staticmethod for a subclass of ``RayTaskRunner``."""
    from prefect_ray import RayTaskRunner

    run_task = RayTaskRunner._run_prefect_task
    if not covered("prefect-ray", "running Prefect tasks in Ray workers with their set-up"):
        return staticmethod(run_task)

    def run(*args: Any, **kwargs: Any) -> Any:
        before()
        try:
            return run_task(*args, **kwargs)
        finally:
            after()

    return staticmethod(run)


# -- Ray -----------------------------------------------------------------------------------


def ray_seeded_rng(seed: int | None) -> Any:
    """The random state Ray's ``BasicVariantGenerator`` builds from ``random_state``."""
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng

    return _BackwardsCompatibleNumpyRng(seed)


def ray_preset_variants(spec: dict[str, Any], point: dict[str, Any], rng: Any) -> Iterator[Any]:
    """Ray's resolution of one ``points_to_evaluate`` entry into variants, as its generator does."""
    from ray.tune.search.variant_generator import _get_preset_variants

    return iter(_get_preset_variants(spec, point, False, rng))


def ray_variants(spec: dict[str, Any], rng: Any) -> Iterator[Any]:
    """Ray's resolution of a param space into variants, as its generator does."""
    from ray.tune.search.variant_generator import generate_variants

    return iter(generate_variants(spec, False, rng))


def previews_random_draws() -> bool:
    """Whether :func:`ray_seeded_rng` and friends may be used (``unitrain validate``'s preview)."""
    return covered("ray", "showing the draws of Ray's random search before it runs")


def local_gpu_count() -> int | None:
    """GPUs on this machine, counted the way Ray counts them when it starts (None: unknown)."""
    if not covered("ray", "counting this machine's GPUs as Ray does"):
        return None
    from ray._private.accelerators import get_accelerator_manager_for_resource

    manager = get_accelerator_manager_for_resource("GPU")
    if manager is None:
        return 0
    return int(manager.get_current_node_num_accelerators())


def ray_init_keeping_sigterm(**kwargs: Any) -> None:
    """``ray.init(**kwargs)``, keeping this process's SIGTERM handler while it runs.

    ``ray.init`` installs a handler that raises ``SystemExit`` wherever the main
    thread is. A SIGTERM that lands while it imports is swallowed by the import
    machinery ("Exception ignored") and leaves a module lock held; another
    thread, importing too, then waits for that lock forever.
    """
    import ray

    if not covered("ray", "keeping a SIGTERM handler while Ray starts"):
        ray.init(**kwargs)
        return
    import ray._private.utils as ray_utils

    installs = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        ray.init(**kwargs)
    finally:
        ray_utils.set_sigterm_handler = installs


def set_tuner_callbacks(tuner: Any, callbacks: list[Any]) -> None:
    """Give a restored Tuner this run's callbacks.

    ``Tuner.restore`` brings back the run config pickled by the first run,
    callbacks included; those hold the first run's progress artifact and no
    live thread. Ray offers no public way to replace them.
    """
    if covered("ray", "giving a resumed search its new callbacks"):
        tuner._local_tuner.get_run_config().callbacks = callbacks


def set_tuner_stopper(tuner: Any, stopper: Any) -> None:
    """Give a restored Tuner this run's stopper (the pickled one reads no live account)."""
    if covered("ray", "giving a resumed search its new stopper"):
        tuner._local_tuner.get_run_config().stop = stopper


def _stop_tune_forwarding_credentials(is_secret: Callable[[str], bool]) -> None:
    """Keep Ray Tune from copying the driver's credentials into its trials' runtime env.

    Ray Tune puts ``AWS_SECRET_ACCESS_KEY`` and friends from the driver's
    environment into every trainable's ``runtime_env``, which Ray's logs and
    state API show. Trials get their secrets from a private file instead.
    """
    if not covered("ray", "keeping credentials out of Ray Tune's runtime environments"):
        return
    from ray.tune.execution import class_cache

    for name in [n for n in class_cache.ENV_VARS_TO_PROPAGATE if is_secret(n)]:
        class_cache.ENV_VARS_TO_PROPAGATE.discard(name)


def _quiet_missing_result_files() -> None:
    """Keep Ray Tune from warning, at the end of a search, that trials wrote no result files.

    unitrain's trials keep their results in their own folders and MLflow, so
    the search runs without Ray's JSON and CSV loggers: they cost the search's
    loop a write per result, and the end of every search a pandas read per
    trial. Ray's ``ExperimentAnalysis`` then warns once, naming every trial,
    that it found no file to read. Only that warning is dropped: one that
    names another error still shows.
    """
    if not covered("ray", "quieting Ray Tune's warning about result files"):
        return
    from ray.tune.analysis import experiment_analysis

    logger = experiment_analysis.logger
    if not any(isinstance(f, _MissingResultFiles) for f in logger.filters):
        logger.addFilter(_MissingResultFiles())


class _MissingResultFiles(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        first, *trials = record.getMessage().splitlines()
        missing = first.startswith("Failed to fetch metrics for") and all(
            "FileNotFoundError(" in line for line in trials
        )
        return not missing


def _keep_starting_trial_actors() -> None:
    """Let a trial whose own actor is starting wait for it while another trial takes a free one.

    When a trial finishes and its actor is kept for reuse, Ray Tune gives that
    actor to the oldest waiting trial, even one whose own new actor is already
    starting, and then kills the starting one. With trials shorter than a
    worker's start (a few seconds), one actor ends up running every trial
    while a new worker is started and killed for each: the search runs one
    trial at a time and spends a core on workers that never run one. Here,
    while a trial's own actor has its resources and is starting, the free
    actor goes to a waiting trial that has no actor of its own, if there is
    one; the starting actor then joins in.
    """
    if not covered("ray", "sharing kept actors between short trials"):
        return
    from ray.tune.execution.tune_controller import TuneController

    reuse = TuneController._maybe_reuse_cached_actor
    if getattr(reuse, "_unitrain", False):
        return

    def maybe_reuse_cached_actor(controller: Any, trial: Any) -> bool:
        if _waits_for_own_actor(controller, trial):
            return False
        return reuse(controller, trial)

    maybe_reuse_cached_actor._unitrain = True  # type: ignore[attr-defined]
    TuneController._maybe_reuse_cached_actor = maybe_reuse_cached_actor  # type: ignore[method-assign]


def _waits_for_own_actor(controller: Any, trial: Any) -> bool:
    """True if ``trial``'s own actor is starting and a waiting trial without one can reuse."""
    own = controller._trial_to_actor.get(trial)
    if own is None or trial in controller._resetting_trials:
        return False
    # An actor still waiting for resources may wait for ever while free actors
    # hold them: its trial takes the free actor, as Ray Tune does.
    if not controller._actor_manager.is_actor_started(own):
        return False
    resources = trial.placement_group_factory
    return any(
        other is not trial
        and other in controller._pending_trials
        and other not in controller._trial_to_actor
        and other.placement_group_factory == resources
        for other in controller._pending_trials_list
    )


def _choose_waiting_trials_without_walking_every_trial() -> None:
    """Find the trial to start among the waiting trials, not among all of them.

    Ray Tune's FIFO scheduler (ASHA's and the median rule's too) picks the first
    pending trial, else the first paused one, by walking the search's trials in
    order at every step of the controller, and walks them all twice when none
    waits. Over 10,000 short trials that walk was most of the growth of the
    cost per trial. The controller already keeps the pending and the paused
    trials in sets; the first of them in the search's order is the same trial.
    """
    if not covered("ray", "choosing waiting trials from the controller's sets"):
        return
    from ray.tune.schedulers import FIFOScheduler

    choose = FIFOScheduler.choose_trial_to_run
    if getattr(choose, "_unitrain", False):
        return

    def choose_trial_to_run(scheduler: Any, tune_controller: Any) -> Any:
        controller = getattr(tune_controller, "_tune_controller", None)
        if controller is None:  # not the controller's wrapper: Ray Tune's own walk
            return choose(scheduler, tune_controller)
        return _first_waiting_trial(scheduler, controller)

    choose_trial_to_run._unitrain = True  # type: ignore[attr-defined]
    FIFOScheduler.choose_trial_to_run = choose_trial_to_run  # type: ignore[method-assign]


def _first_waiting_trial(scheduler: Any, controller: Any) -> Any:
    """The first pending trial in the search's order, else the first paused one, else None.

    A trial's place in the order is kept on the scheduler, added to as the
    controller appends trials (it never reorders or removes them).
    """
    from ray.tune.experiment import Trial

    trials = controller.get_trials()
    known = scheduler.__dict__.get("_unitrain_order")
    if known is None or known[0] is not trials:
        known = scheduler.__dict__["_unitrain_order"] = (trials, {})
    order: dict[Any, int] = known[1]
    for index in range(len(order), len(trials)):
        order[trials[index]] = index
    for status, waiting in (
        (Trial.PENDING, controller._pending_trials),
        (Trial.PAUSED, controller._paused_trials),
    ):
        candidates = [t for t in waiting if t.status == status and t in order]
        if candidates:
            return min(candidates, key=order.__getitem__)
    return None


def optuna_trial_of(searcher: Any, trial_id: str) -> Any:
    """The Optuna trial that Ray's ``OptunaSearch`` asked for ``trial_id`` (None: unknown).

    Ray's searcher keeps them in a private mapping; unitrain reads it to give a
    trial its constraint values (``Trial.set_constraint``, which Optuna's samplers read)
    before the trial is told. Outside the covered releases: None, and the
    search runs without telling Optuna of the constraints.
    """
    if not covered("ray", "telling Optuna of a trial's constraints"):
        return None
    return searcher._ot_trials.get(trial_id)


# -- HyperOpt (through Ray's searcher) ---------------------------------------------------


def hyperopt_add_evaluated(searcher: Any, parameters: dict[str, Any], loss: float) -> bool:
    """Add a point evaluated elsewhere to the TPE history of Ray's ``HyperOptSearch``.

    Ray's searcher has no ``add_evaluated_point``; HyperOpt learns from the
    finished trials of its ``Trials`` object, so the point is added as one.
    Returns False (and the searcher learns nothing) outside the covered releases.
    """
    if not (
        covered("ray", "warm-starting HyperOpt with earlier trials")
        and covered("hyperopt", "warm-starting HyperOpt with earlier trials")
    ):
        return False
    import hyperopt as hpo

    vals = dict(parameters)
    searcher._convert_categories_to_indices(vals)  # a choice is stored as its index
    trials = searcher._hpopt_trials
    (tid,) = trials.new_trial_ids(1)
    misc = {
        "tid": tid,
        "cmd": ("domain_attachment", "FMinIter_Domain"),
        "workdir": None,
        "idxs": {name: [tid] for name in vals},
        "vals": {name: [drawn] for name, drawn in vals.items()},
    }
    result = {"loss": loss, "status": hpo.STATUS_OK}
    (doc,) = trials.new_trial_docs([tid], [None], [result], [misc])
    doc["state"] = hpo.JOB_STATE_DONE
    trials.insert_trial_docs([doc])
    trials.refresh()
    return True


# -- Python --------------------------------------------------------------------------------


def exit_now(code: int) -> None:
    """End the process once a command is done, without tearing down the interpreter.

    What the interpreter does on its way out, in its order: the threads' exit
    hooks (Prefect stops its services there), waiting for the threads that
    are not daemons, then the exit handlers; then flush and leave. Finalising
    Ray's, Prefect's and MLflow's modules would take about 2 s more, after
    every command. Outside the covered Pythons, the usual exit.
    """
    if not covered("python", "exiting without finalising the interpreter"):
        sys.exit(code)
    import atexit
    import os
    import threading

    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

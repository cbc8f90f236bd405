"""The private parts of Ray and Prefect that unitrain relies on, in one place.

Each is imported only when called. ``tests/unit/test_compat.py`` calls every
one of them, so an upgrade that moves or renames one fails there, loudly,
instead of in a user's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "drain_prefect_workers",
    "end_flow_heartbeats_without_waiting",
    "keep_starting_trial_actors",
    "local_gpu_count",
    "quiet_missing_result_files",
    "ray_preset_variants",
    "ray_seeded_rng",
    "ray_variants",
    "set_tuner_callbacks",
    "set_tuner_stopper",
    "stop_tune_forwarding_credentials",
]


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


def local_gpu_count() -> int:
    """GPUs on this machine, counted the way Ray counts them when it starts."""
    from ray._private.accelerators import get_accelerator_manager_for_resource

    manager = get_accelerator_manager_for_resource("GPU")
    if manager is None:
        return 0
    return int(manager.get_current_node_num_accelerators())


def drain_prefect_workers(timeout_s: float) -> None:
    """Send buffered Prefect logs and events, and stop their background workers."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout_s)
    EventsWorker.drain_all(timeout=timeout_s)


def end_flow_heartbeats_without_waiting() -> None:
    """Let a flow run end without waiting up to a second for its heartbeat thread.

    Prefect sends a flow run's heartbeats from a thread that sleeps in steps
    of a second, and a synchronous flow joins that thread when it ends: every
    job's end waited for the thread's current second to run out (0.5 s on
    average). The thread is a daemon that stops by itself within that second,
    and no heartbeat is sent for a run in a final state; Prefect's own async
    engine does not join it either (``join_on_exit=False``). Installed once
    per process, before a flow runs.
    """
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


def set_tuner_callbacks(tuner: Any, callbacks: list[Any]) -> None:
    """Give a restored Tuner this run's callbacks.

    ``Tuner.restore`` brings back the run config pickled by the first run,
    callbacks included; those hold the first run's progress artifact and no
    live thread. Ray offers no public way to replace them.
    """
    tuner._local_tuner.get_run_config().callbacks = callbacks


def stop_tune_forwarding_credentials(is_secret: Callable[[str], bool]) -> None:
    """Keep Ray Tune from copying the driver's credentials into its trials' runtime env.

    Ray Tune puts ``AWS_SECRET_ACCESS_KEY`` and friends from the driver's
    environment into every trainable's ``runtime_env``, which Ray's logs and
    state API show. Trials get their secrets from a private file instead.
    """
    from ray.tune.execution import class_cache

    for name in [n for n in class_cache.ENV_VARS_TO_PROPAGATE if is_secret(n)]:
        class_cache.ENV_VARS_TO_PROPAGATE.discard(name)


def quiet_missing_result_files() -> None:
    """Keep Ray Tune from warning, at the end of a search, that trials wrote no result files.

    unitrain's trials keep their results in their own folders and MLflow, so
    the search runs without Ray's JSON and CSV loggers: they cost the search's
    loop a write per result, and the end of every search a pandas read per
    trial. Ray's ``ExperimentAnalysis`` then warns once, naming every trial,
    that it found no file to read. Only that warning is dropped: one that
    names another error still shows.
    """
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


def set_tuner_stopper(tuner: Any, stopper: Any) -> None:
    """Give a restored Tuner this run's stopper (the pickled one reads no live account)."""
    tuner._local_tuner.get_run_config().stop = stopper


def keep_starting_trial_actors() -> None:
    """Let a trial whose own actor is starting wait for it while another trial takes a free one.

    When a trial finishes and its actor is kept for reuse, Ray Tune gives that
    actor to the oldest waiting trial, even one whose own new actor is already
    starting, and then kills the starting one. With trials shorter than a
    worker's start (a few seconds), one actor ends up running every trial
    while a new worker is started and killed for each: the search runs one
    trial at a time and spends a core on workers that never run one. Here,
    while a trial's own actor has its resources and is starting, the free
    actor goes to a waiting trial that has no actor of its own, if there is
    one; the starting actor then joins in. Installed once per process.
    """
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

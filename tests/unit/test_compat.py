"""Every private Ray and Prefect API unitrain uses still exists and behaves as relied on.

When one of these fails after an upgrade, fix ``unitrain/_compat.py``.
"""

from __future__ import annotations

from unitrain import _compat


def test_ray_variant_generation_is_seeded():
    from ray import tune

    spec = {"config": {"x": tune.uniform(0, 1), "b": tune.grid_search([1, 2])}}

    def draw(seed):
        return [r["config"] for _, r in _compat.ray_variants(spec, _compat.ray_seeded_rng(seed))]

    first = draw(5)
    assert [c["b"] for c in first] == [1, 2] and all(0 <= c["x"] <= 1 for c in first)
    assert first == draw(5) != draw(6)
    # (that these are the generator's own draws is checked end to end: the seeded
    # configurations a tuning job ran equal what `unitrain validate` showed)


def test_ray_preset_variants_resolve_a_point():
    from ray import tune

    spec = {"config": {"x": tune.uniform(0, 1), "y": tune.choice([1, 2])}}
    variants = list(_compat.ray_preset_variants(spec, {"x": 0.5}, _compat.ray_seeded_rng(1)))
    assert variants[0][1]["config"]["x"] == 0.5 and variants[0][1]["config"]["y"] in (1, 2)


def test_local_gpu_count_is_a_number():
    assert _compat.local_gpu_count() >= 0


def test_prefect_log_workers_can_be_drained():
    _compat.drain_prefect_workers(timeout_s=1)  # nothing to drain: returns at once


def test_a_restored_tuner_takes_new_callbacks(tmp_path):
    from ray import tune

    class Marker(tune.Callback):
        pass

    tuner = tune.Tuner(
        lambda config: None,
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp"),
    )
    marker = Marker()
    _compat.set_tuner_callbacks(tuner, [marker])
    assert tuner._local_tuner.get_run_config().callbacks == [marker]


def test_ray_tune_stops_forwarding_credentials(monkeypatch):
    from ray.tune.execution import class_cache

    # Ray forwards AWS credentials by default; a job run earlier in this process may
    # already have removed them from the module's set, so they are put back here.
    aws = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    monkeypatch.setattr(
        class_cache, "ENV_VARS_TO_PROPAGATE", set(class_cache.ENV_VARS_TO_PROPAGATE) | aws
    )
    _compat.stop_tune_forwarding_credentials(lambda name: "SECRET" in name or "KEY" in name)
    assert "AWS_SECRET_ACCESS_KEY" not in class_cache.ENV_VARS_TO_PROPAGATE
    assert "AWS_ACCESS_KEY_ID" not in class_cache.ENV_VARS_TO_PROPAGATE
    assert "AWS_SESSION_TOKEN" in class_cache.ENV_VARS_TO_PROPAGATE  # the predicate decides


class _Trial:
    def __init__(self, resources: str) -> None:
        self.placement_group_factory = resources


class _Actors:
    """Ray's actor manager: an actor is started once it holds its resources."""

    def __init__(self, holding_resources: set[object]) -> None:
        self.holding = holding_resources

    def is_actor_started(self, actor: object) -> bool:
        return actor in self.holding


def _controller(trials_with_actor, pending, resetting=(), waiting_for_resources=()):
    from types import SimpleNamespace

    actors = {trial: object() for trial in trials_with_actor}
    return SimpleNamespace(
        _trial_to_actor=actors,
        _actor_manager=_Actors(
            {a for t, a in actors.items() if t not in set(waiting_for_resources)}
        ),
        _resetting_trials=set(resetting),
        _pending_trials=set(pending),
        _pending_trials_list=list(pending),
    )


def test_a_trial_with_a_starting_actor_leaves_a_free_actor_to_a_trial_without_one():
    from unitrain._compat import _waits_for_own_actor

    starting, fresh = _Trial("1 CPU"), _Trial("1 CPU")
    # another trial can take the free actor: the one whose actor is starting waits for it
    assert _waits_for_own_actor(_controller([starting], [starting, fresh]), starting)
    # nobody else can: it takes the free actor (Ray Tune then stops the starting one)
    assert not _waits_for_own_actor(_controller([starting], [starting]), starting)
    gpu = _Trial("1 GPU")
    assert not _waits_for_own_actor(_controller([starting], [starting, gpu]), starting)
    # a trial with no actor of its own, or one being reset onto an actor, takes it at once
    assert not _waits_for_own_actor(_controller([], [starting, fresh]), fresh)
    assert not _waits_for_own_actor(
        _controller([starting], [starting, fresh], resetting=[starting]), starting
    )
    # its actor still waits for resources (held, maybe, by the free actor): it takes the
    # free one rather than wait until no other trial is left
    assert not _waits_for_own_actor(
        _controller([starting], [starting, fresh], waiting_for_resources=[starting]), starting
    )


def test_ray_tune_keeps_starting_trial_actors():
    from ray.tune.execution.tune_controller import TuneController

    _compat.keep_starting_trial_actors()
    patched = TuneController._maybe_reuse_cached_actor
    _compat.keep_starting_trial_actors()  # once per process
    assert TuneController._maybe_reuse_cached_actor is patched
    assert getattr(patched, "_unitrain", False)
    # the attributes the policy reads are the controller's own
    import inspect

    source = inspect.getsource(TuneController.__init__)
    names = ("_trial_to_actor", "_resetting_trials", "_pending_trials", "_pending_trials_list")
    for name in (*names, "_actor_manager"):
        assert f"self.{name}" in source, name
    from ray.air.execution._internal.actor_manager import RayActorManager

    assert callable(RayActorManager.is_actor_started)


def test_ray_tune_warns_only_of_result_files_it_could_not_read_for_another_reason():
    import inspect
    import logging

    from ray.tune.analysis import experiment_analysis

    # the warning Ray gives when no trial wrote result files
    source = inspect.getsource(experiment_analysis.ExperimentAnalysis._fetch_trial_dataframes)
    assert "Failed to fetch metrics for" in source
    _compat.quiet_missing_result_files()
    _compat.quiet_missing_result_files()  # once is enough
    logger = experiment_analysis.logger
    assert sum(isinstance(f, _compat._MissingResultFiles) for f in logger.filters) == 1
    shown: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    try:
        missing = "- trial_1: FileNotFoundError('Could not fetch metrics for trial_1')"
        logger.warning("Failed to fetch metrics for 2 trial(s):\n%s\n%s", missing, missing)
        logger.warning("Failed to fetch metrics for 1 trial(s):\n- trial_2: ValueError('bad')")
        logger.warning("another warning")
    finally:
        logger.removeHandler(handler)
    assert shown == [
        "Failed to fetch metrics for 1 trial(s):\n- trial_2: ValueError('bad')",
        "another warning",
    ]


def test_a_flow_run_ends_without_joining_its_heartbeat_thread(monkeypatch):
    import inspect
    import logging
    import threading

    from prefect import flow_engine

    _compat.end_flow_heartbeats_without_waiting()
    _compat.end_flow_heartbeats_without_waiting()  # installed once
    original = flow_engine._send_heartbeats._original
    assert not hasattr(original, "_original")
    assert "join_on_exit" in inspect.signature(original).parameters

    beat = threading.Event()

    class Engine:  # what Prefect's heartbeat loop reads of a flow run engine
        heartbeat_seconds = 30
        flow_run = None
        logger = logging.getLogger("test")

        def _build_heartbeat_event_template(self):
            return None, None

        def _emit_flow_run_heartbeat(self, resource, related):
            beat.set()

    joined: list[threading.Thread] = []
    join = threading.Thread.join

    def spy(thread, timeout=None):
        joined.append(thread)
        return join(thread, timeout)

    before = set(threading.enumerate())
    monkeypatch.setattr(threading.Thread, "join", spy)
    with flow_engine._send_heartbeats(Engine()):
        assert beat.wait(10)
    monkeypatch.undo()
    (thread,) = set(threading.enumerate()) - before
    assert thread.daemon and thread not in joined
    thread.join(timeout=10)  # it ends by itself within its second of sleep
    assert not thread.is_alive()

"""Every private API unitrain uses still exists and behaves as relied on, and each is left
alone with a release its tests do not cover.

When one of these fails after an upgrade, fix ``unitrain/_compat.py`` and add the
release to ``_compat.COVERED``.
"""

from __future__ import annotations

import ast
import signal
import sys
from pathlib import Path

import pytest

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
    count = _compat.local_gpu_count()
    assert count is not None and count >= 0


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
    _compat._stop_tune_forwarding_credentials(lambda name: "SECRET" in name or "KEY" in name)
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

    _compat._keep_starting_trial_actors()
    patched = TuneController._maybe_reuse_cached_actor
    _compat._keep_starting_trial_actors()  # once per process
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
    _compat._quiet_missing_result_files()
    _compat._quiet_missing_result_files()  # once is enough
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

    _compat.install_flow_patches()
    _compat.install_flow_patches()  # installed once
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


def test_ray_starts_without_taking_the_sigterm_handler(monkeypatch):
    import ray
    import ray._private.utils as ray_utils

    installed: list[object] = []
    monkeypatch.setattr(ray_utils, "set_sigterm_handler", installed.append)

    def init(**kwargs):  # what ray.init does with SIGTERM, without starting a cluster
        ray_utils.set_sigterm_handler(lambda signum, frame: sys.exit(1))
        return kwargs

    monkeypatch.setattr(ray, "init", init)
    before = signal.getsignal(signal.SIGTERM)
    _compat.ray_init_keeping_sigterm(num_cpus=1)
    assert installed == [] and signal.getsignal(signal.SIGTERM) is before
    assert ray_utils.set_sigterm_handler == installed.append  # put back afterwards
    assert (
        "set_sigterm_handler"
        in Path(ray.__file__).with_name("_private").joinpath("worker.py").read_text()
    )


def test_an_api_only_prefect_server_has_its_settings():
    from prefect.settings import Settings

    environment = _compat.prefect_api_only_environment()
    assert environment["PREFECT_UI_ENABLED"] == "0"
    assert {"PREFECT__SERVER_EPHEMERAL", "PREFECT__SERVER_FINAL"} <= set(environment)
    fields = {name.lower() for name in Settings.model_fields["server"].annotation.model_fields}
    assert {"ephemeral", "ui"} <= fields


def test_tasks_in_ray_workers_run_between_their_set_up_and_clean_up(monkeypatch):
    from prefect_ray import RayTaskRunner

    calls: list[str] = []
    monkeypatch.setattr(
        RayTaskRunner, "_run_prefect_task", staticmethod(lambda *a, **k: calls.append("task"))
    )
    run = _compat.run_prefect_task_between(
        lambda: calls.append("before"), lambda: calls.append("after")
    )
    run.__func__(task=None)
    assert calls == ["before", "task", "after"]


def test_hyperopt_learns_an_evaluated_point():
    from ray import tune
    from ray.tune.search.hyperopt import HyperOptSearch

    space = HyperOptSearch.convert_search_space({"x": tune.uniform(0, 1)})
    searcher = HyperOptSearch(space=space, metric="score", mode="max", random_state_seed=0)
    assert _compat.hyperopt_add_evaluated(searcher, {"x": 0.25}, -0.5)
    (trial,) = searcher._hpopt_trials.trials
    assert trial["result"] == {"loss": -0.5, "status": "ok"}
    assert trial["misc"]["vals"] == {"x": [0.25]}


def test_a_command_exits_without_finalising_the_interpreter(tmp_path):
    import subprocess

    code = (
        "import atexit, threading, time\n"
        "from unitrain._compat import exit_now\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "t = threading.Thread(target=lambda: (time.sleep(0.3), print('thread done', flush=True)))\n"
        "t.start()\n"
        "exit_now(7)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 7
    assert done.stdout.splitlines() == ["thread done", "exit handler ran"]


@pytest.mark.parametrize(
    ("call", "package"),
    [
        (lambda: _compat.install_flow_patches(), "prefect"),
        (lambda: _compat.local_gpu_count(), "ray"),
        (lambda: _compat.set_tuner_stopper(None, None), "ray"),
        (lambda: _compat.hyperopt_add_evaluated(None, {}, 0.0), "hyperopt"),
        (lambda: _compat._keep_starting_trial_actors(), "ray"),
        (lambda: _compat._choose_waiting_trials_without_walking_every_trial(), "ray"),
    ],
)
def test_a_release_the_tests_do_not_cover_is_left_alone_with_one_warning(
    monkeypatch, call, package
):
    monkeypatch.setitem(_compat.COVERED, package, frozenset({"0.0"}))
    monkeypatch.setattr(_compat, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match=f"tested with {package} 0.0"):
        result = call()
    assert result in (None, False)
    with warnings_as_errors():
        call()  # once is enough


def warnings_as_errors():
    import warnings

    context = warnings.catch_warnings()

    class Manager:
        def __enter__(self):
            context.__enter__()
            warnings.simplefilter("error")

        def __exit__(self, *exc):
            return context.__exit__(*exc)

    return Manager()


def test_outside_the_covered_pythons_a_command_exits_as_usual(monkeypatch):
    monkeypatch.setitem(_compat.COVERED, "python", frozenset({"2.7"}))
    monkeypatch.setattr(_compat, "_WARNED", set())
    with pytest.warns(RuntimeWarning), pytest.raises(SystemExit) as exited:
        _compat.exit_now(3)
    assert exited.value.code == 3


PRIVATE_CALLS = {("threading", "_shutdown"), ("atexit", "_run_exitfuncs")}
LIBRARIES = ("ray", "prefect", "prefect_ray", "mlflow", "hyperopt", "optuna", "bayes_opt")


def test_no_module_but_compat_reaches_into_a_library_s_private_parts():
    root = Path(_compat.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_compat.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                private = any(p.startswith("_") for p in parts) or any(
                    a.name.startswith("_") for a in node.names
                )
                if parts[0] in LIBRARIES and private:
                    found.append(where)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in PRIVATE_CALLS:
                    found.append(where)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith("PREFECT__"):
                    found.append(where)
    assert found == []


class _Waiting:
    """A trial as the FIFO scheduler sees it: a status, hashed by identity."""

    def __init__(self, status: str) -> None:
        self.status = status


def test_the_first_waiting_trial_is_the_one_ray_tune_s_walk_over_every_trial_finds():
    import random
    from types import SimpleNamespace

    from ray.tune.experiment import Trial
    from ray.tune.schedulers import FIFOScheduler

    from unitrain._compat import _first_waiting_trial

    statuses = [Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED, Trial.ERROR]
    rng = random.Random(0)
    scheduler, trials = FIFOScheduler(), []
    controller = SimpleNamespace(get_trials=lambda: trials)
    for _ in range(300):
        trials.append(_Waiting(rng.choice(statuses)))  # the search adds a trial
        for trial in rng.sample(trials, min(3, len(trials))):  # some change status
            trial.status = rng.choice(statuses)
        controller._pending_trials = {t for t in trials if t.status == Trial.PENDING}
        controller._paused_trials = {t for t in trials if t.status == Trial.PAUSED}
        # without the controller's wrapper the scheduler walks every trial, as Ray Tune does
        expected = scheduler.choose_trial_to_run(controller)
        assert _first_waiting_trial(scheduler, controller) is expected


def test_ray_tune_s_fifo_scheduler_chooses_from_the_controller_s_sets():
    import inspect

    from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    _compat._choose_waiting_trials_without_walking_every_trial()
    patched = FIFOScheduler.choose_trial_to_run
    _compat._choose_waiting_trials_without_walking_every_trial()  # once per process
    assert FIFOScheduler.choose_trial_to_run is patched
    assert ASHAScheduler.choose_trial_to_run is patched  # ASHA inherits it
    # what the patch reads is the controller's own, kept by its status setter
    setter = inspect.getsource(TuneController._set_trial_status)
    assert "self._pending_trials" in setter and "self._paused_trials" in setter
    assert "self._tune_controller = tune_controller" in inspect.getsource(TrialRunnerWrapper)

"""End-to-end fixtures: a real Prefect API (the test harness), a real local Ray.

The suite runs on two processes (pytest-xdist, ``--dist loadgroup``). Tests
that run flows in their process share that process's Prefect harness and Ray
(each process starts them once, when its first such test needs them): they
come in three groups (training, tuning, the examples), each kept on one
process; those that drive ``unitrain`` and Prefect as subprocesses, each on a
home of their own, are a fourth group. Unit tests fill in around them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# file -> group; files of one group run on one process, the session's harness and Ray
GROUPS = {
    "test_train_flow.py": "training",
    "test_tune_flow.py": "tuning",
    "test_checkpoints.py": "tuning",
    "test_examples.py": "examples",
    "test_objectives.py": "training",
    "test_plugin_logs.py": "training",
    "test_promotion.py": "training",
    # the command line on a home of its own, beside the "commands" group
    "test_replay.py": "replay",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            group = GROUPS.get(item.path.name, "commands")
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a pytest on which the groups would not hold.

    pytest 9.2 no longer lets pytest-xdist add a test's group to its ID
    (pytest-dev/pytest-xdist#1386): every test of a group would then go to either
    process, each would start its own harness and Ray, and the suite would take
    minutes longer without saying why.
    """
    if config.getoption("dist", "no") == "loadgroup" and pytest.version_tuple[:2] >= (9, 2):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} breaks --dist loadgroup (pytest-dev/pytest-xdist#1386); "
            "install the test extras again: pip install -e '.[test]' (pytest<9.2)"
        )


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Prefect's test harness: a real API server on a database of its own.

    The harness makes and migrates that database in a folder from ``mkdtemp``
    (about 15 s here). It is given a folder whose database already starts from
    the migrated copy new homes start from; Prefect's start still checks it is
    at the newest migration.
    """
    from unittest import mock

    from prefect.testing import utilities

    from unitrain.runtime.prefect_db_template import seed_from_template

    folder = tmp_path_factory.mktemp("prefect-harness")
    seed_from_template(folder / "prefect-test.db")  # the name the harness gives its database
    with mock.patch.object(utilities, "mkdtemp", return_value=str(folder)):
        harness = utilities.prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()  # mkdtemp is called here only
    try:
        yield
    finally:
        harness.__exit__(None, None, None)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the session: each flow reuses it instead of starting its own."""
    import ray

    from unitrain.runtime.ray_init import ray_init_kwargs

    ray.init(**{**ray_init_kwargs(local=True), "num_cpus": 2})
    yield
    ray.shutdown()


@pytest.fixture
def flow_env(prefect_api: None, ray_cluster: None) -> None:
    """Everything a flow needs to run for real."""

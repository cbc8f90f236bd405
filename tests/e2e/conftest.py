"""End-to-end fixtures: a real Prefect API (the test harness), a real local Ray.

The suite runs on two processes (pytest-xdist, ``--dist loadgroup``). Tests
that run flows in their process share that process's Prefect harness and Ray:
they come in two groups (the flows, the examples) that may land on either
process; those that drive ``unitrain`` and Prefect as subprocesses, each on a
home of their own, are a third group. Unit tests fill in around them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# file -> group; files of one group run on one process, the session's harness and Ray
GROUPS = {
    "test_train_flow.py": "flows",
    "test_tune_flow.py": "flows",
    "test_examples.py": "examples",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            group = GROUPS.get(item.path.name, "commands")
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the session: each flow reuses it instead of starting its own."""
    import ray

    from unitrain.runtime.ray_cluster import ray_init_kwargs

    ray.init(**{**ray_init_kwargs(local=True), "num_cpus": 2})
    yield
    ray.shutdown()


@pytest.fixture
def flow_env(prefect_api: None, ray_cluster: None) -> None:
    """Everything a flow needs to run for real."""

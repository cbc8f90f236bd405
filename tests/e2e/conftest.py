"""End-to-end fixtures: a real Prefect API (the test harness), a real local Ray.

The suite runs on two processes (pytest-xdist, ``--dist loadgroup``): the tests
that run flows in this process, on the session's Prefect harness and Ray, stay
together on one; those that drive ``unitrain`` and Prefect as subprocesses,
each on a home of their own, on the other. Unit tests fill in around them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

IN_PROCESS = {"test_train_flow.py", "test_tune_flow.py", "test_examples.py", "test_multinode.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            group = "flows" if item.path.name in IN_PROCESS else "commands"
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

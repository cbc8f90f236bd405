"""End-to-end fixtures: a real Prefect API (the test harness), a real local Ray."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


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

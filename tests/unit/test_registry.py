from pathlib import Path

import pytest

from tests.stores import mlflow_client, register_model
from unitrain.errors import NotFoundError
from unitrain.stores import writers
from unitrain.stores.client_writer import ClientWriter
from unitrain.stores.mlflow_store import MlflowStore
from unitrain.stores.registry import ModelRegistry, best_alias


def register(registry: ModelRegistry, tmp_path: Path, job: str, trial: str = "") -> int:
    return register_model(
        job,
        tmp_path / f"model-{job}-{trial}",
        trial=trial,
        hyperparameters={"lr": 0.1},
        metrics={"accuracy": 0.9},
    )


def test_model_ids_are_consecutive_integers_with_metadata(home, tmp_path):
    registry = ModelRegistry()
    first, second = register(registry, tmp_path, "a"), register(registry, tmp_path, "b", "t1")
    assert (first, second) == (1, 2)
    record = registry.get(2)
    assert (record.job, record.trial_id, record.plugin, record.dataset) == ("b", "t1", "p", "1")
    assert record.hyperparameters == {"lr": 0.1} and record.metrics == {"accuracy": 0.9}


def test_download_returns_the_files(home, tmp_path):
    registry = ModelRegistry()
    model_id = register(registry, tmp_path, "a")
    folder = registry.download(model_id, tmp_path / "download")
    assert (folder / "weights.bin").read_bytes() == b"\x00\x01"


def test_unknown_model_is_a_clear_error(home):
    with pytest.raises(NotFoundError, match="checkpoint: model 42 does not exist"):
        ModelRegistry().get(42)


def test_jobs_and_latest(home, tmp_path):
    registry = ModelRegistry()
    register(registry, tmp_path, "job%3A1")
    latest = register(registry, tmp_path, "job%3A1", "t")
    assert registry.job_exists("job%3A1") and not registry.job_exists("job")
    assert registry.latest_of("job%3A1") == latest
    assert [r.model_id for r in registry.models(job="job%3A1")] == [1, 2]


def test_mark_best_sets_tag_and_alias(home, tmp_path):
    registry = ModelRegistry()
    model_id = register(registry, tmp_path, "tuned job")
    registry.mark_best(model_id, "tuned job")
    assert registry.get(model_id).best
    alias = mlflow_client().get_model_version_by_alias(registry.name, best_alias("tuned job"))
    assert int(alias.version) == model_id
    assert best_alias("tuned-job") == "best-tuned-job"
    assert best_alias("tuned job") != best_alias("tuned_job")


@pytest.fixture(params=["sql", "client"])
def marking(request, monkeypatch):
    """Marking the best through direct SQL (SQLite stores) and through MLflow's client."""
    monkeypatch.setattr(writers, "_CHOSEN", {})
    if request.param == "client":
        store = MlflowStore()
        writers._CHOSEN[store.tracking_uri] = ClientWriter(store)
    return request.param


def test_a_job_has_one_best_model_and_other_jobs_keep_theirs(home, tmp_path, marking):
    registry = ModelRegistry()
    first, second = (
        register(registry, tmp_path, "job", "t1"),
        register(registry, tmp_path, "job", "t2"),
    )
    other = register(registry, tmp_path, "other job", "t1")
    registry.mark_best(other, "other job")
    registry.mark_best(first, "job")
    registry.mark_best(second, "job")
    registry.mark_best(second, "job")  # again: still one tag, one alias
    assert [registry.get(i).best for i in (first, second, other)] == [False, True, True]
    assert registry.best_of("job") == second and registry.best_of("other job") == other
    version = mlflow_client().get_model_version(registry.name, str(second))
    assert version.tags["unitrain.best"] == "true"
    assert version.aliases == [best_alias("job")]
    model = mlflow_client().get_registered_model(registry.name)
    assert model.aliases == {best_alias("job"): second, best_alias("other job"): other}


def test_marking_a_missing_model_changes_nothing(home, tmp_path, marking):
    from mlflow.exceptions import MlflowException

    registry = ModelRegistry()
    first = register(registry, tmp_path, "job", "t1")
    registry.mark_best(first, "job")
    with pytest.raises(MlflowException, match="not found"):
        registry.mark_best(first + 1, "job")
    assert registry.get(first).best and registry.best_of("job") == first


def test_an_unreachable_store_is_not_a_missing_model_and_its_password_stays_hidden(
    home, monkeypatch
):
    import socket

    from unitrain.errors import StoreUnavailableError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("UNITRAIN_STORE_RETRY_S", "1")
    registry = ModelRegistry(tracking_uri=f"http://user:hunter2@127.0.0.1:{port}")
    with pytest.raises(StoreUnavailableError) as raised:
        registry.get(5)
    message = str(raised.value)
    assert "could not be reached" in message and f"http://***@127.0.0.1:{port}" in message
    assert "hunter2" not in message and "does not exist" not in message


def test_the_newest_models_are_one_read_however_many_there_are(home, tmp_path, monkeypatch):
    registry = ModelRegistry()
    ids = [register(registry, tmp_path, "big", f"t{i}") for i in range(5)]
    register(registry, tmp_path, "other")
    pages: list[int] = []
    search = registry._client.search_model_versions

    def counted(*args, **kwargs):
        pages.append(kwargs["max_results"])
        return search(*args, **kwargs)

    monkeypatch.setattr(registry._client, "search_model_versions", counted)
    assert [r.model_id for r in registry.models(job="big", newest=3)] == ids[-3:]
    assert pages == [3]

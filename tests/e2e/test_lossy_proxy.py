"""The test harness of a lost reply: a real MLflow server behind :class:`LossyProxy`.

Through the proxy, MLflow's client works as against the server itself; a reply the
proxy is told to lose leaves the client with a dropped connection while the server has
done the write: the situation a retrying client must not turn into a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import LossyProxy, MlflowServer

pytestmark = pytest.mark.e2e

RUNS_CREATE = "/api/2.0/mlflow/runs/create"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LossyProxy]:
    # MLflow's own HTTP retries would send a lost request again and hide the loss.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with LossyProxy(server.url) as proxy:
        yield proxy


def test_mlflow_works_through_the_proxy(proxy: LossyProxy):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=proxy.url)
    experiment_id = client.create_experiment("through-the-proxy")
    found = client.search_experiments(filter_string="name = 'through-the-proxy'")
    assert [e.experiment_id for e in found] == [experiment_id]
    run = client.create_run(experiment_id, run_name="kept-alive")
    client.log_metric(run.info.run_id, "score", 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"score": 0.5}
    assert proxy.lost == []


def test_a_lost_reply_is_a_dropped_connection_after_the_write(
    proxy: LossyProxy, server: MlflowServer, tmp_path: Path
):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=proxy.url)
    experiment_id = client.create_experiment("lost-reply")
    proxy.lose_replies("POST", RUNS_CREATE, count=1)
    with pytest.raises(Exception) as raised:
        client.create_run(experiment_id, run_name="written-anyway")
    assert any(
        words in str(raised.value)
        for words in ("RemoteDisconnected", "Connection aborted", "Remote end closed")
    ), raised.value
    assert proxy.lost == [("POST", RUNS_CREATE)]
    assert proxy.pending() == {}

    runs = client.search_runs([experiment_id])  # the same client, the proxy still up
    assert [r.info.run_name for r in runs] == ["written-anyway"]
    again = client.create_run(experiment_id, run_name="second")  # only one reply was lost
    assert again.info.run_name == "second"
    assert proxy.lost == [("POST", RUNS_CREATE)]


def test_runs_written_side_by_side_are_each_written_once_and_returned_in_order(
    proxy: LossyProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from mlflow import MlflowClient

    from unitrain.stores.client_writer import ClientWriter
    from unitrain.stores.mlflow_store import TAG, MlflowStore, new_request_key
    from unitrain.stores.writes import FinishedRun, ModelVersion

    monkeypatch.setenv("UNITRAIN_HOME", str(tmp_path / "home"))
    store = MlflowStore(proxy.url, store_retry_s=30)
    assert store.served
    experiment = MlflowClient(tracking_uri=proxy.url).create_experiment("side-by-side")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    runs = [
        FinishedRun(
            request=new_request_key(),
            experiment_id=experiment,
            name=f"trial-{index}",
            status="FINISHED",
            start_ms=1,
            end_ms=2,
            params={"index": str(index)},
            metrics=[("score", float(index), 2, 0)],
            uploads=((str(model), "model"),),
            model=ModelVersion(store.registered_model, "model", f"trial {index}", {}),
        )
        for index in range(6)
    ]
    # lost on the way back: the run and the version were made, the writer saw a dropped line
    proxy.lose_replies("POST", RUNS_CREATE, count=1, skip=2)
    proxy.lose_replies("POST", "/api/2.0/mlflow/model-versions/create", count=1, skip=3)
    written = ClientWriter(store).write_many(runs)
    assert proxy.pending() == {}
    client = MlflowClient(tracking_uri=proxy.url)
    assert [client.get_run(w.run_id).info.run_name for w in written] == [r.name for r in runs]
    made = client.search_runs([experiment])
    assert sorted(r.data.tags[TAG.REQUEST] for r in made) == sorted(r.request for r in runs)
    versions = client.search_model_versions(f"name = '{store.registered_model}'")
    assert sorted(int(v.version) for v in versions) == sorted(w.model_id for w in written)
    assert {v.run_id for v in versions} == {w.run_id for w in written}

"""No input ends in a traceback: thousands of generated and mutated jobs are either
accepted or refused with the validation error, through parsing and planning alike."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unitrain.errors import JobValidationError, NotFoundError
from unitrain.job.params import parse_job
from unitrain.planning import plan_job
from unitrain.stores.catalog import DatasetCatalog

EXAMPLES = Path(__file__).parents[2] / "examples"
#: generated jobs per run: a sample in `make test`, 20,000 in `make slow` (FUZZ_EXAMPLES=20000);
#: Hypothesis itself (drawing and mutating) takes most of the time, about 6 ms a job
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
SEEDS: list[dict[str, Any]] = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
SEEDS.append(
    {
        "name": "fuzz",
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameters": [
            {"name": "x", "type": "qloguniform", "min": 0.001, "max": 1, "base": 10},
            {"name": "steps", "type": "qrandint", "min": 1, "max": 9, "q": 2},
            {"name": "y", "type": "qrandn", "mean": 0, "sd": 1},
        ],
        "tune_config": {
            "metric": "score",
            "num_samples": 4,
            "search_alg": {"name": "bayesoptsearch", "points_to_evaluate": [{"x": 0.01}]},
            "scheduler": {"name": "asha", "options": {"max_t": 4}},
        },
    }
)

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, -5e-324, 1e308, -1e308, 1e-9, 2.0**70, 0.0, -0.0]),
)
ints = st.one_of(st.integers(), st.sampled_from([2**70, -(2**70), 2**63, -1, 0, 10**30]))
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "\u202e", "a\u200bb", "..", "/", "latest", "latest:", "grid_search", "ß" * 300]
    ),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if len(prefix) >= 6 or isinstance(value, Deep):  # deep enough for every field of a job
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_jobs(draw: st.DrawFn) -> Any:
    job = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(job)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "nest", "listify"]))
        if not path:
            job = draw(json_values) if action == "replace" else job
            continue
        parent = job
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if action == "replace":
            parent[last] = draw(json_values)
        elif action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(texts)] = draw(json_values)
        elif action == "nest":
            parent[last] = {"deep": Deep(draw(st.integers(10, 3000)))}
        elif action == "listify":
            parent[last] = [parent[last]] * draw(st.integers(0, 50))
    return job


class Deep:
    """A list nested ``depth`` levels, built only when the job is used (and shown short)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


def expanded(value: Any, *, cap: int | None = None) -> Any:
    if isinstance(value, Deep):
        nested: Any = 1
        for _ in range(min(value.depth, cap or value.depth)):
            nested = [nested]
        return nested
    if isinstance(value, dict):
        return {key: expanded(child, cap=cap) for key, child in value.items()}
    if isinstance(value, list):
        return [expanded(child, cap=cap) for child in value]
    return value


class FakeRegistry:
    """A registry that has no models (planning asks it about checkpoints and names)."""

    def get(self, model_id: int) -> Any:
        raise NotFoundError(f"checkpoint: model {model_id} does not exist in the registry")

    def latest_of(self, job: str) -> int | None:
        return None

    def job_exists(self, job: str) -> bool:
        return False

    def best_of(self, job: str) -> int | None:
        return None

    #: the studies are read from the (empty) store of the test's home
    store = None


def plan_or_refuse(document: Any) -> None:
    document = expanded(document)
    try:
        job = parse_job(document)
        plan_job(job.params, job.plugin, registry=FakeRegistry(), catalog=DatasetCatalog())  # type: ignore[arg-type]
    except JobValidationError as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)


@pytest.fixture(scope="module")
def fuzz_home(tmp_path_factory: pytest.TempPathFactory):
    import os

    home = tmp_path_factory.mktemp("fuzz-home")
    saved = os.environ.get("UNITRAIN_HOME"), os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["UNITRAIN_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    from unitrain.stores.registry import ModelRegistry

    ModelRegistry()  # the store's tables, made once rather than in the first timed job
    yield home
    for name, value in zip(("UNITRAIN_HOME", "MLFLOW_TRACKING_URI"), saved, strict=True):
        if value is not None:
            os.environ[name] = value


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=st.one_of(mutated_jobs(), json_values))
def test_every_job_is_planned_or_refused_with_the_validation_error(fuzz_home, document):
    plan_or_refuse(document)


def test_a_very_deep_job_file_is_refused_in_one_line(tmp_path, capsys):
    from unitrain.cli import main

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid job: job file") and "nested" in err
    assert "Traceback" not in err


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(document=mutated_jobs())
def test_the_command_line_answers_mutated_jobs_with_one_line_per_problem(
    fuzz_home, tmp_path, capsys, document
):
    from unitrain.cli import main

    path = tmp_path / "job.json"
    # (json.dumps itself recurses: the deepest files are tested on their own, below)
    path.write_text(json.dumps(expanded(document, cap=400), allow_nan=True))
    started = time.monotonic()
    code = main(["validate", str(path)])
    took = time.monotonic() - started
    captured = capsys.readouterr()
    assert code in (0, 2), (document, captured.err)
    assert "Traceback" not in captured.err
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert lines[0].startswith("error: invalid job:"), captured.err
        assert all(line.startswith("  - ") for line in lines[1:]), captured.err
    else:
        assert json.loads(captured.out)["valid"] is True
    assert took < 5, f"{took:.1f} s to validate {document!r:.300}"


def test_the_seeds_are_valid_jobs(fuzz_home):
    # Mutations start from valid jobs, so most of them break one rule at a time.
    for seed in SEEDS:
        assert parse_job(seed).params is not None

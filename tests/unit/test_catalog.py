from pathlib import Path

import numpy as np
import pytest

from unitrain.errors import NotFoundError, UnitrainError
from unitrain.stores.catalog import DatasetCatalog


def make_npz(path: Path) -> Path:
    np.savez(path, X=np.arange(20, dtype="float32").reshape(10, 2), y=np.arange(10) % 2)
    return path


def test_bundled_datasets_are_there_out_of_the_box(home):
    catalog = DatasetCatalog()
    assert catalog.get(1).name == "digits"
    assert catalog.get("iris").id == 2


def test_add_with_chosen_id_and_find_by_id_or_name(home, tmp_path):
    source = make_npz(tmp_path / "data.npz")
    entry = DatasetCatalog().add(str(source), id=456, name="toy")
    assert entry.uri == source.resolve().as_uri() and entry.sha256
    again = DatasetCatalog()  # a new reader sees what was written
    assert again.get(456) == entry and again.get("toy") == entry


def test_next_free_id_and_taken_ids(home, tmp_path):
    catalog = DatasetCatalog()
    first = catalog.add(str(make_npz(tmp_path / "a.npz")))
    assert first.id == 100
    assert catalog.add(str(make_npz(tmp_path / "b.npz"))).id == 101
    with pytest.raises(UnitrainError, match="dataset ID 100 is already taken"):
        catalog.add(str(make_npz(tmp_path / "c.npz")), id=100)
    with pytest.raises(UnitrainError, match="belongs to the bundled dataset 'digits'"):
        catalog.add(str(make_npz(tmp_path / "d.npz")), id=1)


def test_unknown_dataset_lists_what_exists(home):
    with pytest.raises(
        NotFoundError, match=r"dataset 999 is not in the catalog; known datasets: 1 \(digits\)"
    ):
        DatasetCatalog().get(999)


def test_missing_source_is_rejected(home, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        DatasetCatalog().add(str(tmp_path / "nope.npz"))


def test_prepare_copies_with_progress_and_checks_digest(home, tmp_path):
    source = make_npz(tmp_path / "data.npz")
    catalog = DatasetCatalog()
    entry = catalog.add(str(source), id=300)
    seen: list[tuple[int, int]] = []
    prepared = catalog.prepare(entry, progress=lambda done, total: seen.append((done, total)))
    assert Path(prepared.path).read_bytes() == source.read_bytes()
    assert Path(prepared.path).parent.parent == home / "datasets" / "cache"
    assert seen[-1][0] == seen[-1][1] == source.stat().st_size
    # The source changes after registration: preparing again must refuse it.
    import shutil

    shutil.rmtree(Path(prepared.path).parent)
    np.savez(source, X=np.zeros((3, 2), dtype="float32"), y=np.zeros(3))
    with pytest.raises(UnitrainError, match="changed since it was registered"):
        catalog.prepare(entry)
    assert not any(p.name.startswith(".staging") for p in (home / "datasets" / "cache").iterdir())


def test_prepare_bundled_materialises_arrays(home):
    catalog = DatasetCatalog()
    prepared = catalog.prepare(catalog.get(1))
    with np.load(prepared.path) as arrays:
        assert arrays["X"].shape == (1797, 64)


def test_a_bundled_dataset_can_take_another_id(home):
    catalog = DatasetCatalog()
    entry = catalog.add("bundled:digits", id=456)
    assert (entry.name, entry.uri) == ("digits-456", "bundled:digits")
    with np.load(catalog.prepare(catalog.get(456)).path) as arrays:
        assert arrays["X"].shape == (1797, 64)
    with pytest.raises(NotFoundError, match="bundled datasets are"):
        catalog.add("bundled:mnist", id=457)


@pytest.mark.parametrize(
    "reference", ["/tmp/../etc/shadow", "http://169.254.169.254/latest", "memory://x", "a/b"]
)
def test_a_job_names_catalogued_datasets_only(home, reference):
    from unitrain.errors import JobValidationError
    from unitrain.planning import plan_job

    with pytest.raises(JobValidationError, match="never a path or URL"):
        plan_job({"name": "j", "dataset": reference, "hyperparameter": {"epochs": 1}})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("memory://x", "scheme 'memory' is not allowed"),
        ("simplecache::http://example.org/data.npz", "chained fsspec URLs are not accepted"),
        ("https://user:secret@example.org/data.npz", "credentials in a URI are refused"),
        ("ftp://example.org/data.npz", "scheme 'ftp' is not allowed"),
    ],
)
def test_sources_outside_the_allowed_schemes_are_refused(home, source, message):
    with pytest.raises(UnitrainError, match=message) as raised:
        DatasetCatalog().add(source)
    assert "secret" not in str(raised.value)
    assert DatasetCatalog().entries()[2:] == []


def test_roots_limit_what_can_be_added_after_resolving_links(home, tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = make_npz(allowed / "ok.npz")
    outside = make_npz(tmp_path / "outside.npz")
    (allowed / "link.npz").symlink_to(outside)
    monkeypatch.setenv("UNITRAIN_DATASET_ROOTS", str(allowed))
    catalog = DatasetCatalog()
    assert catalog.add(str(inside)).name == "ok.npz"
    for sneaky in (allowed / "link.npz", allowed / ".." / "outside.npz"):
        with pytest.raises(UnitrainError, match="is outside the allowed folders"):
            catalog.add(str(sneaky))


def test_cached_copies_are_readable_by_their_owner_only(home, tmp_path):
    import stat

    source = make_npz(tmp_path / "open.npz")
    source.chmod(0o644)
    catalog = DatasetCatalog()
    dataset = catalog.prepare(catalog.add(str(source)))
    path = Path(dataset.path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "datasets" / "cache").stat().st_mode) == 0o700
    bundled = Path(catalog.prepare(catalog.get(1)).path)
    assert stat.S_IMODE(bundled.stat().st_mode) == 0o600

"""Upload batching: few models travel in one batch, many fan out, order is kept."""

from __future__ import annotations

import pytest

from unitrain.tasks.upload_models import ModelUpload, _ranges, batches


def uploads(count: int) -> list[ModelUpload]:
    return [ModelUpload(f"run{i}", f"/m/{i}", {}, {}, trial_id=f"t{i}") for i in range(count)]


@pytest.mark.parametrize(
    ("count", "parallelism", "sizes"),
    [
        (0, 2, []),
        (1, 2, [1]),
        (249, 4, [249]),
        (500, 2, [250, 250]),
        (501, 2, [251, 250]),
        (1000, 2, [500, 500]),
        (1000, 3, [334, 333, 333]),
        (1000, 8, [250, 250, 250, 250]),
    ],
)
def test_batch_sizes(count, parallelism, sizes):
    made = batches(uploads(count), parallelism)
    assert [len(b) for b in made] == sizes
    assert [u.trial_id for b in made for u in b] == [f"t{i}" for i in range(count)]


def test_model_id_ranges_read_well_in_one_log_line():
    assert _ranges([9, 3, 4, 5]) == "3-5, 9"
    assert _ranges([1]) == "1"
    assert _ranges([]) == ""

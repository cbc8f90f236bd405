"""Upload: one readable log line for the model IDs of a job."""

from __future__ import annotations

from unitrain.tasks.upload_models import _ranges


def test_model_id_ranges_read_well_in_one_log_line():
    assert _ranges([9, 3, 4, 5]) == "3-5, 9"
    assert _ranges([1]) == "1"
    assert _ranges([]) == ""

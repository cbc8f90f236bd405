"""Step 2: copy the dataset into the local cache and check its integrity."""

from __future__ import annotations

from prefect import get_run_logger, task

from unitrain.plugin_api import Dataset
from unitrain.reporting.progress import JobProgress
from unitrain.stores.catalog import CatalogEntry, DatasetCatalog


@task(name="prepare_dataset", retries=2, retry_delay_seconds=2)
def prepare_dataset(entry: CatalogEntry, progress: JobProgress) -> Dataset:
    """Make ``entry`` available as a local file, reporting the copy's progress."""
    step = progress.step("dataset")
    dataset = DatasetCatalog().prepare(entry, progress=step.update)
    step.complete()
    get_run_logger().info(
        "dataset %s (%s) ready at %s, sha256 %s",
        dataset.id,
        dataset.name,
        dataset.path,
        dataset.sha256[:12],
    )
    return dataset

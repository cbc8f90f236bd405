"""Step 2: copy the dataset into the local cache and check its integrity.

The job's run records what its models are made with: the dataset's SHA-256,
the plugin's and the libraries' versions (``unitrain.provenance``).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from unitrain.plugin_api import Dataset
from unitrain.provenance import provenance_tags
from unitrain.reporting.progress import JobProgress
from unitrain.stores.catalog import CatalogEntry, DatasetCatalog
from unitrain.stores.runs import RunStore


@task(name="prepare_dataset", retries=2, retry_delay_seconds=2)
def prepare_dataset(
    entry: CatalogEntry, progress: JobProgress, plugin: str, run_id: str | None = None
) -> Dataset:
    """Make ``entry`` available as a local file, reporting the copy's progress; record it
    (and the plugin's and libraries' versions) on the job's run ``run_id``."""
    step = progress.step("dataset")
    dataset = DatasetCatalog().prepare(entry, progress=step.update)
    if run_id is not None:
        RunStore().log(run_id, tags=provenance_tags(plugin, dataset.sha256))
    step.complete()
    get_run_logger().info(
        "dataset %s (%s) ready at %s, sha256 %s",
        dataset.id,
        dataset.name,
        dataset.path,
        dataset.sha256[:12],
    )
    return dataset

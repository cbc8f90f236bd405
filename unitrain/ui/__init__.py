"""What users look at in the Prefect UI: the progress bar, the trial table, the summary."""

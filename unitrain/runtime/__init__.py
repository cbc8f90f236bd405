"""What runs a job: Ray behind Prefect's task runner, the Prefect API, the local stack."""

"""The job: its parameters, search space, name rules and plan.

Nothing here imports Ray, Prefect or MLflow at import time: a job is checked
before any of them starts.
"""

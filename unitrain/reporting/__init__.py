"""What the layers report through, and the types they hand each other to report.

The trial table and the job's progress bar are built by the search and by
plugins and shown by the UIs; the run logger is where every layer's lines for
the job's Prefect log go. Nothing here knows Ray or MLflow.
"""

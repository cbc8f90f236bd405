"""Ray Tune glue: searchers, schedulers, the trial function, the live table, the dry run.

Importing this package imports nothing of Ray: each module does, when used.
"""

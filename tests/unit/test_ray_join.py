"""Joining Ray early: what happens when there is nothing to join yet."""

from __future__ import annotations

import ray

from unitrain.runtime import ray_join
from unitrain.runtime.stack_files import clients_folder


def test_without_a_stack_up_nothing_is_joined_started_or_held(home):
    # On a home whose stack is not running, the flow waits for the stack by
    # itself (and a refused job stops it): joining early gives up at once.
    joined = ray.is_initialized()  # by an end-to-end test in this process: then nothing to do
    ray_join.connect_early("unitrain.tasks.train_model:prepare_worker", "synthetic")
    assert ray_join.take_early_connection() is None
    assert ray.is_initialized() == joined
    assert not list(clients_folder().glob("*"))  # no lease of the stack left behind
    assert ray_join.take_early_connection() is None  # taken once


def test_abandoning_what_was_never_joined_does_nothing(home):
    joined = ray.is_initialized()
    ray_join.abandon_early_connection()
    ray_join.connect_early()
    ray_join.abandon_early_connection()
    assert ray_join.take_early_connection() is None
    assert ray.is_initialized() == joined

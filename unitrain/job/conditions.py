"""Conditional hyperparameters: entries that exist only for some options of a ``choice``.

An entry with ``"when": {"optimizer": ["sgd", "rmsprop"]}`` is sampled, and
given to the plugin, only when the ``choice`` entry ``optimizer`` took one of
those options; otherwise the trial has no such key. The conditions form a
tree (a conditional entry may itself be the condition of others).

This module owns the rules: :func:`check_conditions` refuses a condition on an
unknown entry, on an entry that is not a ``choice``, on an option the choice
does not have, and a cycle; :func:`present` turns what a searcher proposed
into what the plugin gets; :func:`tree` draws the space for ``unitrain
validate``. How each searcher samples such a space is its converter's
(``unitrain.tune.ray_space``, ``hyperopt_space``, ``optuna_space``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unitrain.job.search_space import Choice, Distribution, GridSearch

__all__ = ["check_conditions", "children_of", "in_order", "is_conditional", "present", "tree"]


def is_conditional(entries: Sequence[Distribution]) -> bool:
    """Whether any entry of the space has a condition."""
    return any(entry.when for entry in entries)


def check_conditions(entries: Sequence[Distribution]) -> None:
    """Raise ``ValueError`` naming the entry whose condition is impossible."""
    by_name = {entry.name: entry for entry in entries}
    for entry in entries:
        if not entry.when:
            continue
        ((parent, options),) = entry.when.items()
        where = f"hyperparameters: {entry.name!r}.when"
        if isinstance(entry, GridSearch):
            raise ValueError(
                f"{where}: a grid_search entry cannot be conditional (every grid point runs); "
                "make it a choice"
            )
        if parent == entry.name:
            raise ValueError(f"{where}: an entry cannot depend on itself")
        if parent not in by_name:
            raise ValueError(f"{where}: no entry named {parent!r}; known: {sorted(by_name)}")
        condition = by_name[parent]
        if not isinstance(condition, Choice):
            raise ValueError(
                f"{where}: {parent!r} is a {condition.type_name}; a condition names a choice entry"
            )
        unknown = [option for option in options if option not in condition.options]
        if unknown:
            raise ValueError(
                f"{where}: {parent!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options are {condition.options}"
            )
    for entry in entries:
        chain = [entry.name]
        current = entry
        while current.when:
            name = current.parent
            if name in chain:
                cycle = " -> ".join(repr(n) for n in [*chain[chain.index(name) :], name])
                raise ValueError(f"hyperparameters: the conditions form a cycle: {cycle}")
            chain.append(name)  # type: ignore[arg-type]
            current = by_name[name]  # type: ignore[index]


def children_of(entries: Sequence[Distribution]) -> dict[str, list[Distribution]]:
    """Each choice entry that conditions others -> those entries, in space order."""
    children: dict[str, list[Distribution]] = {}
    for entry in entries:
        if entry.parent is not None:
            children.setdefault(entry.parent, []).append(entry)
    return children


def in_order(entries: Sequence[Distribution]) -> list[Distribution]:
    """The entries with each one after the entry its condition names (a searcher sampling
    them in this order knows, at each, whether its condition holds)."""
    placed: list[Distribution] = []
    names: set[str] = set()
    waiting = list(entries)
    while waiting:
        ready = [e for e in waiting if e.parent is None or e.parent in names]
        if not ready:  # a cycle: check_conditions refuses it before any searcher runs
            raise ValueError("hyperparameters: the conditions form a cycle")
        for entry in ready:
            placed.append(entry)
            names.add(entry.name)
        waiting = [e for e in waiting if e.name not in names]
    return placed


def present(entries: Sequence[Distribution], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as the plugin gets it: the entries whose conditions hold, at the top level.

    Searchers propose conditional spaces in their own shapes: random search
    draws every entry (the ones whose conditions fail are dropped here), and
    HyperOpt nests a choice's conditional entries in the option it took
    (``{"optimizer": {"optimizer": "sgd", "momentum": 0.9}}``, flattened here).
    A space without conditions comes back as it went in.
    """
    if not is_conditional(entries):
        return config
    parents = children_of(entries)
    flat = dict(config)
    pending = [name for name in parents if isinstance(flat.get(name), dict)]
    while pending:
        name = pending.pop()
        nested = flat[name]
        if not isinstance(nested, dict) or name not in nested:
            continue  # a choice whose options are themselves dicts
        flat.update(nested)  # the option under its own name, and its conditional entries
        pending += [n for n in parents if n in nested and isinstance(flat.get(n), dict)]
    kept = dict(flat)
    for entry in in_order(entries):
        if entry.name in kept and not entry.holds(kept):
            del kept[entry.name]
    return kept


def tree(entries: Sequence[Distribution]) -> list[str]:
    """The space as an indented tree: each conditional entry under its choice and options."""
    children = children_of(entries)
    lines: list[str] = []

    def draw(entry: Distribution, depth: int) -> None:
        lines.append(f"{'  ' * depth}{entry.name} ({entry.type_name})")
        for child in children.get(entry.name, []):
            options = ", ".join(map(repr, (child.when or {})[entry.name]))
            lines.append(f"{'  ' * (depth + 1)}when {entry.name} in [{options}]:")
            draw(child, depth + 2)

    for entry in entries:
        if entry.parent is None:
            draw(entry, 0)
    return lines

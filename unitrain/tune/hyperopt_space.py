"""The search space as HyperOpt's: Ray's conversion, with conditional entries nested.

Ray's ``HyperOptSearch`` converts each Ray domain into a HyperOpt expression
(the one place unitrain's entries meet Ray is ``unitrain.tune.ray_space``);
a conditional space needs what Ray's flat conversion cannot say: a choice
whose options carry their own entries. Each choice that conditions others
becomes ``hp.choice(name, [{name: option, <entries under option>}, ...])``,
so TPE models a conditional entry only from the trials where it existed. An
entry under several options is one expression shared by those branches
(HyperOpt refuses one label twice). ``unitrain.job.conditions.present``
flattens what such a space proposes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unitrain.job.conditions import children_of, is_conditional
from unitrain.job.search_space import Choice, Distribution
from unitrain.tune.ray_space import to_param_space

__all__ = ["hyperopt_space"]


def hyperopt_space(entries: Sequence[Distribution]) -> dict[str, Any]:
    """The space HyperOpt samples: top-level entries, conditional ones nested in choices."""
    from hyperopt import hp
    from ray.tune.search.hyperopt import HyperOptSearch

    flat = HyperOptSearch.convert_search_space(to_param_space(entries))
    if not is_conditional(entries):
        return flat
    children = children_of(entries)
    by_name = {entry.name: entry for entry in entries}
    built: dict[str, Any] = {}

    def node(entry: Distribution) -> Any:
        if entry.name in built:
            return built[entry.name]
        if entry.name not in children:
            built[entry.name] = flat[entry.name]
            return built[entry.name]
        assert isinstance(entry, Choice)  # conditions name choices (job validation)
        branches = []
        for option in entry.options:
            branch: dict[str, Any] = {entry.name: option}
            for child in children[entry.name]:
                if child.when and option in child.when[entry.name]:
                    branch[child.name] = node(by_name[child.name])
            branches.append(branch)
        built[entry.name] = hp.choice(entry.name, branches)
        return built[entry.name]

    return {entry.name: node(entry) for entry in entries if entry.parent is None}

"""Exceptions unitrain raises for its users.

They keep their arguments in ``args`` so they pickle: errors raised inside a
Ray worker or a Prefect task must arrive intact in the driver.
"""

from __future__ import annotations

__all__ = ["UnitrainError", "JobValidationError", "NotFoundError", "StoreUnavailableError"]


class UnitrainError(Exception):
    """Base class of every error unitrain reports to a user."""


class JobValidationError(UnitrainError):
    """A job was rejected before anything ran.

    Args:
        problems: one line per problem, each naming the field and the rule.
    """

    #: a problem line longer than this is cut (it may quote a huge value)
    MAX_LINE = 500

    def __init__(self, problems: list[str] | str) -> None:
        if isinstance(problems, str):
            problems = [problems]
        lines = [_printable(p) for p in problems]
        lines = [p if len(p) <= self.MAX_LINE else p[: self.MAX_LINE] + "..." for p in lines]
        super().__init__(lines)

    @property
    def problems(self) -> list[str]:
        return list(self.args[0])

    def __str__(self) -> str:
        problems = self.problems
        if len(problems) == 1:
            return f"invalid job: {problems[0]}"
        return "invalid job:\n" + "\n".join(f"  - {p}" for p in problems)


def _printable(line: str) -> str:
    """Escape control and invisible characters: a key such as ``"\\r"`` must not break the
    one-line-per-problem output, nor hide part of it."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)


class NotFoundError(UnitrainError):
    """A dataset, model or plugin named by a job does not exist."""


class StoreUnavailableError(UnitrainError):
    """A store (MLflow, the Prefect API) could not be reached, or stayed busy, for too long.

    Distinct from :class:`NotFoundError`: the thing asked for may well exist.
    """

"""One exception root for everything nurture reports to a user.

`NurtureError` subclasses are problems with input or state that a user can fix
(a bad file, a bad row, an unknown contact), or a passing refusal from the
database (`Retryable`: `nurture.store.db` translates the driver's errors into
`Conflict` and `DatabaseUnavailable`, once). `ConfigurationError` sits outside
the root on purpose: retry loops catch `NurtureError` and must never swallow a
broken deployment (wrong URL, missing secret) and spin on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class NurtureError(Exception):
    """Something nurture was asked to do could not be done."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a definition file, with where it is.

    `path` is the key path inside the document (``steps[2].wait_for.timeout``),
    kept next to the line so tools can point at it even where lines are lost.
    """

    file: str
    line: int | None
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class DefinitionError(NurtureError):
    """The nurture project has invalid files."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        # A file's problems without a line (file-wide) come first; None and int don't compare.
        self.problems: list[Problem] = sorted(set(problems), key=_where)
        super().__init__("\n".join(str(p) for p in self.problems) or None)


class TemplateError(NurtureError):
    """An email template could not be rendered."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class ContactNotFound(NurtureError):
    """No contact with that email or id."""


class Retryable(NurtureError):
    """The database turned this transaction down for a passing reason: try it again."""


class Conflict(Retryable):
    """Another writer stored the same row first; a retry reads what it wrote."""


class DatabaseUnavailable(Retryable):
    """The database is unreachable or dropped the connection."""


class ValueRefused(NurtureError):
    """The database refused a value the checks at the edge let through."""


class ConfigurationError(Exception):
    """nurture is not configured correctly (environment, settings, services).

    Deliberately *not* a NurtureError: see the module docstring.
    """


def problems_text(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def _where(problem: Problem) -> tuple[str, int, str, str]:
    return (problem.file, problem.line or 0, problem.message, problem.path)

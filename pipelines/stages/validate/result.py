"""The verdict on one batch as plain value objects, and the lines people read about it.

:class:`ValidationResult` is what ``validation.json`` holds and what the night, the DAG and the
quarantine report read. It also keeps, in memory only, the Great Expectations run it was read
from (:class:`GxRun`), so that :func:`~pipelines.stages.validate.report.write_report` renders
that very run instead of validating the batch a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from pipelines.records import JsonRecord

SCHEMA_ERROR = "schema_error"  # the `expectation` of a failure found before GX could run
REJECT, WARN = "reject", "warn"  # an expectation's severity (its meta.severity in the suite)


@dataclass(frozen=True)
class FailedExpectation(JsonRecord):
    """One failed expectation, with a sentence saying what was expected and what was seen."""

    expectation: str  # GX expectation type, or SCHEMA_ERROR
    column: str | None
    message: str
    unexpected_count: int | None = None
    examples: tuple[str, ...] = ()
    severity: str = REJECT


@dataclass(frozen=True)
class ExpectationCheck(JsonRecord):
    """Every evaluated expectation (passed or not), in words."""

    expectation: str
    column: str | None
    success: bool
    expected: str
    observed: str
    severity: str = REJECT


@dataclass(frozen=True)
class GxRun:
    """What Great Expectations was given and said for one batch (never serialised).

    ``suite`` is the suite as loaded (its JSON form); ``result`` the GX
    ``ExpectationSuiteValidationResult``, or None for a batch GX never saw (unreadable, or the
    wrong schema).
    """

    suite: dict[str, Any]
    result: Any = None


@dataclass(frozen=True)
class ValidationResult(JsonRecord):
    """``success`` is False when a ``reject`` expectation failed (listed in ``failed``); failed
    ``warn`` expectations (``warned``) leave the batch accepted, with a warning."""

    success: bool
    n_rows: int | None
    evaluated: int
    failed: tuple[FailedExpectation, ...]
    checks: tuple[ExpectationCheck, ...] = ()
    warned: tuple[FailedExpectation, ...] = ()
    suite: str = ""
    source: str | None = None
    # The GX run behind this verdict, for its Data Docs page; not part of the value (equality,
    # repr, JSON), and absent from a result read back from JSON.
    gx_run: Annotated[GxRun | None, Field(exclude=True)] = field(
        default=None, compare=False, repr=False
    )

    @property
    def is_schema_failure(self) -> bool:
        """True for a batch that could not be read or had the wrong schema (GX never ran)."""
        return self.evaluated == 0 and any(f.expectation == SCHEMA_ERROR for f in self.failed)


def schema_failure(message: str, source: str | None, suite: str = "") -> ValidationResult:
    """A failed result for a batch that could not be read or has the wrong schema."""
    return ValidationResult(
        success=False,
        n_rows=None,
        evaluated=0,
        failed=(FailedExpectation(SCHEMA_ERROR, None, message),),
        suite=suite,
        source=source,
    )


def format_summary(result: ValidationResult) -> str:
    """A few lines for the terminal / task log."""
    verdict = "PASSED" if result.success else "FAILED"
    rows = "?" if result.n_rows is None else f"{result.n_rows:,}"
    lines = [
        f"validate: {verdict} - suite {result.suite!r}, {rows} rows, "
        f"{result.evaluated} expectations, {len(result.failed)} failed, "
        f"{len(result.warned)} warned" + (f" ({result.source})" if result.source else "")
    ]
    lines += [f"  - {msg}" for msg in failure_lines(result)]
    lines += [f"  ~ warning: {msg}" for msg in failure_lines(result, WARN)]
    return "\n".join(lines)


def failure_lines(result: ValidationResult, severity: str = REJECT) -> list[str]:
    """Failure messages (``warn``: the warnings) in order, identical ones (a missing column
    fails each of its expectations) said once with a count."""
    counts: dict[str, int] = {}
    for f in result.failed if severity == REJECT else result.warned:
        counts[f.message] = counts.get(f.message, 0) + 1
    return [m if n == 1 else f"{m} ({n} expectations)" for m, n in counts.items()]

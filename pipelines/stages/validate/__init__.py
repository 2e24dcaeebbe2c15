"""Stage `validate`: check a batch against the committed Great Expectations suite.

The suite (``expectations/<suite>.json``) is first generated from reference data by
:func:`profile_suite` (``python -m pipelines.stages.validate profile``), then reviewed and
committed by a person. :func:`validate_frame` runs it on a dataframe with an ephemeral GX
context and returns a :class:`ValidationResult`: the verdict, the numbers and one readable
sentence per failed expectation. :func:`validate_file` reads a batch first; a batch that cannot
even be read is a failed result too (:func:`schema_failure`), so it can be quarantined with its
report. :func:`write_report` draws the GX run that judged the batch as GX Data Docs.

Modules: :mod:`.suite` (profile, load, write the suite), :mod:`.gx` (run GX, read its answer in
plain words), :mod:`.result` (the value objects and summary lines), :mod:`.report` (Data Docs),
:mod:`.stage` (the command line ``dvc repro`` runs: ``python -m pipelines.stages.validate``).
"""

from pipelines.stages.validate.gx import validate_file, validate_frame
from pipelines.stages.validate.report import report_page, write_report
from pipelines.stages.validate.result import (
    SCHEMA_ERROR,
    ExpectationCheck,
    FailedExpectation,
    GxRun,
    ValidationResult,
    format_summary,
    schema_failure,
)
from pipelines.stages.validate.stage import main
from pipelines.stages.validate.suite import (
    CATEGORICAL_TYPES,
    NUMERIC_TYPES,
    SuiteError,
    load_suite,
    profile_suite,
    write_suite,
)

__all__ = [
    "CATEGORICAL_TYPES",
    "NUMERIC_TYPES",
    "SCHEMA_ERROR",
    "ExpectationCheck",
    "FailedExpectation",
    "GxRun",
    "SuiteError",
    "ValidationResult",
    "format_summary",
    "load_suite",
    "main",
    "profile_suite",
    "report_page",
    "schema_failure",
    "validate_file",
    "validate_frame",
    "write_report",
    "write_suite",
]

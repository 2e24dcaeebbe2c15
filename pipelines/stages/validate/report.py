"""The validation report: Great Expectations' own Data Docs for one batch.

:func:`write_report` renders the GX run kept on a :class:`ValidationResult` (the run that
judged the batch: nothing is validated twice) into a Data Docs site of its own folder:

- ``validations/<suite>/<title>/<run time>/validate-batch.html``: the validation page (returned);
- ``expectations/<suite>.html``: the suite, linked from that page;
- ``index.html`` and GX's ``static/`` files.

Each expectation row starts with its severity: ``reject`` (a failure quarantines the batch) or
``warn`` (the batch is accepted with a warning). A batch GX never saw (unreadable, or the wrong
schema) gets a failed page with no expectations evaluated and the reason under "Show more info".
The pages take their styles and scripts from public CDNs, as GX writes them: offline they show
unstyled, but with every result.
"""

from __future__ import annotations

import copy
import html
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from pipelines.files import write_folder
from pipelines.stages.validate.gx import (
    DATA_ASSET,
    DATA_SOURCE,
    build_gx_suite,
    describe,
    ephemeral_context,
    import_gx,
)
from pipelines.stages.validate.result import ValidationResult, failure_lines
from pipelines.stages.validate.suite import severity_of

SITE = "validation"  # the context's one Data Docs site
BATCH_ID = f"{DATA_SOURCE}-{DATA_ASSET}"  # what GX calls the batch: the page's file name


def write_report(result: ValidationResult, out_dir: Path, title: str) -> Path:
    """Write the Data Docs of ``result`` to ``out_dir`` (replaced as a whole); return the page.

    ``result`` comes from :func:`validate_frame` / :func:`validate_file` in this process (a
    result read back from JSON no longer has its GX run: only a schema failure can be drawn
    from the JSON alone). ``title`` names the run on the page and in the index.
    """
    out_dir = Path(out_dir)
    if out_dir.is_file() or (
        out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "index.html").is_file()
    ):
        raise ValueError(f"{out_dir}: not a Data Docs folder; refusing to replace it")
    gx = import_gx()
    if result.gx_run is not None:
        suite = build_gx_suite(gx, result.gx_run.suite)
    else:
        suite = gx.ExpectationSuite(name=result.suite or "suite")
    rendered = _rendered_result(gx, result, suite.name, title)
    pages: list[Path] = []
    write_folder(out_dir, lambda tmp: pages.append(_build_site(gx, suite, rendered, tmp)))
    return out_dir / pages[0]


def _build_site(gx: Any, suite: Any, rendered: Any, base: Path) -> Path:
    """Build the site in ``base`` with an in-memory context; the validation page, relative."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    ctx = ephemeral_context(gx)
    ctx.suites.add(suite)
    ctx.add_data_docs_site(
        SITE,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,  # GX's tutorial links and newsletter footer
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(base),
            },
        },
    )
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    result_id = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id,
        run_id=rendered.meta["run_id"],
        batch_identifier=BATCH_ID,
    )
    ctx.validation_results_store.store_validation_results(rendered, result_id, suite_id)
    ctx.build_data_docs(site_names=[SITE], resource_identifiers=[result_id, suite_id])
    [site] = ctx.get_docs_sites_urls(resource_identifier=result_id, site_name=SITE)
    page = Path(url2pathname(urlparse(site["site_url"] or "").path))
    if not page.is_file():  # GX logs a rendering error and goes on without the page
        raise RuntimeError(f"Great Expectations did not write the validation page in {base}")
    _drop_unused_images(base)
    return page.relative_to(base)


def _drop_unused_images(base: Path) -> None:
    """GX copies ~3.4 MB of images into every site that no page shows; a folder per night and
    per quarantined batch makes that add up. Images a page names are kept."""
    texts = [p for pattern in ("*.html", "*.css", "*.js") for p in base.rglob(pattern)]
    pages = " ".join(p.read_text(errors="replace") for p in texts)
    for image in (base / "static" / "images").glob("*"):
        if image.is_file() and image.name not in pages:
            image.unlink()


def report_page(out_dir: Path) -> Path | None:
    """The validation page of a folder :func:`write_report` wrote (None when there is none)."""
    pages = sorted(Path(out_dir).glob("validations/**/*.html"))
    return pages[-1] if pages else None


def _rendered_result(gx: Any, result: ValidationResult, suite_name: str, title: str) -> Any:
    """The GX result to draw: the judging run, named ``title``, its batch named after the file.

    Data Docs escapes the suite, the run's details and exception messages, but writes observed
    and unexpected values into the page as they are: values from the data (a ``<script>`` in a
    text column) are escaped here. The judging run itself is left untouched.
    """
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier

    judged = result.gx_run.result if result.gx_run is not None else None
    if judged is None and not result.is_schema_failure:
        raise ValueError(
            "write_report: this result has no Great Expectations run (read back from JSON?): "
            "render the result validate_frame or validate_file returned"
        )
    # The run name is a folder of the site: no path separators, never "." or "..".
    run_name = title.replace("/", "-").replace("\\", "-").strip(". ") or "validation"
    if judged is not None:
        run_id = RunIdentifier(run_name=run_name, run_time=judged.meta["run_id"].run_time)
        results = [
            ExpectationValidationResult(
                success=r.success,
                expectation_config=_with_severity(r.expectation_config),
                result=_escaped(r.result),
                meta=r.meta,
                exception_info=r.exception_info,  # GX escapes these itself
            )
            for r in judged.results
        ]
        success, statistics, meta = judged.success, judged.statistics, dict(judged.meta)
    else:  # GX never saw the batch: a failed run with nothing evaluated, and why
        run_id = RunIdentifier(run_name=run_name)
        results, success = [], False
        statistics = {
            "evaluated_expectations": 0,
            "successful_expectations": 0,
            "unsuccessful_expectations": 0,
        }
        meta = {
            "great_expectations_version": gx.__version__,
            "validation_time": run_id.run_time,
            "batch_spec": {"not read": "; ".join(failure_lines(result))},
        }
    meta["run_id"] = run_id
    if result.source:
        meta["batch_spec"] = {
            **(meta.get("batch_spec") or {}),
            "data_asset_name": Path(result.source).name,
            "path": result.source,
        }
    return ExpectationSuiteValidationResult(
        success=success,
        results=results,
        suite_name=suite_name,
        statistics=statistics,
        meta=meta,
    )


def _with_severity(config: Any) -> Any:
    """A copy of an expectation's configuration that Data Docs draws as its severity and what
    it asks for (``reject: values in [0, 142]``): the description replaces GX's own text."""
    if config is None:
        return None
    shown = copy.deepcopy(config)
    severity = severity_of({"meta": shown.meta})
    shown.description = f"{severity}: {describe(shown.type, shown.kwargs)}"
    return shown


def _escaped(value: Any) -> Any:
    """``value`` with every string in it HTML-escaped (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_escaped(v) for v in value)
    return value

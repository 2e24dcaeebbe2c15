"""The gate's view of what the models rely on: the global feature importance (mean |exact
contribution| to the raw margin, :mod:`pipelines.serve.explain`) of challenger and champion on
the same held-out rows, side by side, and whether the challenger ranks the features differently.

A changed ranking is a warning, not a blocking check: a retrained model may rightly lean on
other features when the data moved, and the metric, comparison and fairness checks already
judge what it does with them. So it never changes the verdict: the report shows both rankings,
the decision carries an ``info`` check with the nDCG of the challenger's ranking against the
champion's (relevance: the champion's importances), and below ``gate.importance_ndcg_min`` a
warning joins the reasons, with the features that moved most.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import computed_field

from pipelines.config import Params
from pipelines.files import write_text
from pipelines.records import JsonRecord
from pipelines.serve.explain import RankingComparison, compare_rankings, global_importance
from pipelines.stages.gate.decision import Decision
from pipelines.stages.gate.rules import Check

IMPORTANCE_ROWS = 1000  # held-out rows explained per model (a seeded sample): ~1 s per model
CHECK_NAME = "feature importance ranking"


@dataclass(frozen=True, kw_only=True)
class ImportanceComparison(RankingComparison, JsonRecord):
    """Both models' importances (largest first) and how alike their rankings are (``ndcg``
    None: nothing to compare, no champion or a model not explained)."""

    challenger: dict[str, float]
    champion: dict[str, float]
    flagged = computed_field(RankingComparison.flagged)  # written with the rest


def compare_importance(
    challenger: dict[str, float] | None,
    champion: dict[str, float] | None,
    bound: float,
    rows: int,
    note: str = "",
) -> ImportanceComparison:
    """Pure: the nDCG of the challenger's ranking against the champion's and the top moves."""
    if not note and not (challenger and champion):
        note = "no champion to compare with" if champion is None else "a model is not explained"
    cmp = compare_rankings(champion, challenger, bound, rows, note)
    return ImportanceComparison(**vars(cmp), challenger=challenger or {}, champion=champion or {})


def importance_of(scorer: Any, frame: Any) -> dict[str, float] | None:
    """Mean |contribution| per feature of a compiled scorer's model on ``frame`` (None: the
    model is not explained)."""
    from pipelines.serve.fastpath import frame_records

    explainer = scorer.explainer()
    if explainer is None:
        return None
    X = scorer.matrix(scorer.encode(frame_records(frame, scorer.spec)))
    return global_importance(explainer, X)


def gather_importance(params: Params, champion: str | None) -> ImportanceComparison:
    """The edge: both models loaded the way the gate's evidence loads them, explained on the
    same seeded sample of the held-out rows. A failure is a note, never an error."""
    bound = params.gate.importance_ndcg_min
    try:
        import json

        from pipelines.data import read_parquet
        from pipelines.serve.model import ServingSpec, load_challenger, load_registered

        paths = params.paths
        eval_df = read_parquet(paths.window_eval)
        sample = eval_df.sample(n=min(IMPORTANCE_ROWS, len(eval_df)), random_state=0)
        spec = ServingSpec.from_params(params)
        uri = json.loads(paths.train_record.read_text())["model_uri"]
        new = importance_of(load_challenger(params.tracking_uri, uri, spec).scorer, sample)
        old = None
        if champion is not None:
            key = paths.signing_public_key
            loaded = load_registered(params.tracking_uri, spec, champion, key)
            old = importance_of(loaded.scorer, sample)
        return compare_importance(new, old, bound, len(sample))
    except Exception as err:  # noqa: BLE001 - a report section, never the gate's verdict
        why = f"not computed: {type(err).__name__}: {err}"
        return compare_importance(None, None, bound, 0, why)


def with_importance(d: Decision, cmp: ImportanceComparison) -> Decision:
    """The decision with an ``info`` check for the ranking and, when it changed beyond the
    bound, a warning among the reasons; the verdict stays what it was."""
    if cmp.ndcg is None:
        detail = cmp.note
    else:
        moved = ", ".join(
            f"{m['feature']} {m['reference_rank']}->{m['rank']}" for m in cmp.changes[:3]
        )
        detail = (
            f"nDCG of the challenger's ranking against the champion's on {cmp.rows} held-out "
            f"rows; {'moved (champion->challenger rank): ' + moved if moved else 'same ranking'}"
        )
    check = Check(CHECK_NAME, "importance", "info", cmp.ndcg, f">= {cmp.bound:g}", detail)
    reasons = d.reasons
    if cmp.flagged:
        reasons = (
            *reasons,
            f"warning (not blocking): the challenger ranks the features differently from the "
            f"champion: importance nDCG {cmp.ndcg:.3f} < {cmp.bound:g} ({detail})",
        )
    return dataclasses.replace(d, checks=(*d.checks, check), reasons=reasons)


def _rows(cmp: ImportanceComparison) -> list[tuple[str, str, str]]:
    rank_old = {f: r for r, f in enumerate(cmp.champion, 1)}
    out = []
    for r, (f, v) in enumerate(cmp.challenger.items(), 1):
        old = cmp.champion.get(f)
        was = f"{old:.4f} (#{rank_old[f]})" if old is not None else ""
        out.append((f, f"{v:.4f} (#{r})", was))
    return out


def importance_markdown(cmp: ImportanceComparison) -> str:
    """The report's section: both importances side by side, the nDCG and the flag."""
    lines = ["", "## Feature importance (mean |contribution| to the log-odds)", ""]
    if cmp.ndcg is not None:
        flag = " **changed ranking (warning, not blocking)**" if cmp.flagged else ""
        lines += [f"nDCG {cmp.ndcg:.3f} (bound {cmp.bound:g}) on {cmp.rows} rows.{flag}", ""]
    elif cmp.note:
        lines += [f"Ranking not compared: {cmp.note}", ""]
    if cmp.challenger:
        lines += ["| feature | challenger | champion |", "|---|---|---|"]
        lines += [f"| {f} | {a} | {b} |" for f, a, b in _rows(cmp)]
    return "\n".join(lines) + "\n"


def importance_html(cmp: ImportanceComparison) -> str:
    """The same section as HTML, to go before the report's closing ``</body>``."""
    if cmp.ndcg is not None:
        flag = " <b>changed ranking (warning, not blocking)</b>" if cmp.flagged else ""
        head = f"<p>nDCG {cmp.ndcg:.3f} (bound {cmp.bound:g}) on {cmp.rows} rows.{flag}</p>"
    else:
        head = f"<p>Ranking not compared: {html.escape(cmp.note)}</p>"
    rows = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{a}</td><td>{b}</td></tr>" for f, a, b in _rows(cmp)
    )
    table = (
        f"<table><tr><th>feature</th><th>challenger</th><th>champion</th></tr>{rows}</table>"
        if rows
        else ""
    )
    return f"<h2>Feature importance (mean |contribution| to the log-odds)</h2>{head}{table}"


def add_to_reports(files: dict[str, Path], cmp: ImportanceComparison) -> None:
    """Append the section to the written Markdown report and put it at the end of the HTML
    report's body (``files``: what the stage's ``write_decision`` wrote)."""
    write_text(files["markdown"], files["markdown"].read_text() + importance_markdown(cmp))
    page = files["html"].read_text()
    write_text(files["html"], page.replace("</body>", importance_html(cmp) + "</body>"))


def record_importance(evidence: Path, cmp: ImportanceComparison) -> None:
    """Both importances into the gate's ``evidence.json`` (what the model card reads)."""
    import json

    if not evidence.is_file():
        return
    data = json.loads(evidence.read_text())
    data["feature_importance"] = {
        "challenger": cmp.challenger or None,
        "champion": cmp.champion or None,
        "ndcg": cmp.ndcg,
        "rows": cmp.rows,
    }
    write_text(evidence, json.dumps(data, indent=2, default=float) + "\n")

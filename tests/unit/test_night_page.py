"""What a night leaves for a person: summary.html beside summary.json, linking every report, and
the gate's report kept per night with the night and both versions named."""

from __future__ import annotations

from pipelines.night.page import copy_gate_report, gate_heading, render_page, reports_of
from pipelines.night.record import save_record
from pipelines.records import (
    BatchValidation,
    ChallengerSummary,
    ChampionSummary,
    GateSummary,
    NightRecord,
)


def _night(tmp_path, **kw) -> NightRecord:
    base = {
        "date": "2026-03-01",
        "started_at": "2026-03-01T02:00:00+00:00",
        "reports": str(tmp_path),
        "outcome": "not_promoted",
        "batch": "<img src=x onerror=alert(1)>.csv",
        "rows": 1200,
        "validation": BatchValidation(success=True, evaluated=40),
        "retrained": True,
        "retrain_reasons": ["drift"],
        "challenger": ChallengerSummary(version="5"),
        "champion": ChampionSummary(version="4"),
        "gate": GateSummary(verdict="insufficient", reasons=["roc_auc <script>x</script>"]),
        "serving": "4",
    }
    return NightRecord(**(base | kw))


def test_the_page_says_the_night_and_escapes_what_it_shows(tmp_path):
    rec = _night(tmp_path)
    page = render_page(rec, "2026-03-01: not_promoted - batch accepted", ["gate/report.html"])
    assert "<h1>Night 2026-03-01: not_promoted</h1>" in page
    assert "v5 / v4" in page and "INSUFFICIENT" in page and "1200 rows" in page
    assert '<a href="gate/report.html">' in page
    assert "<script>" not in page and "<img" not in page  # values escaped
    assert "&lt;script&gt;" in page and "&lt;img" in page
    assert gate_heading(rec) == "Night 2026-03-01: challenger v5 against champion v4"


def test_a_saved_night_has_its_page_and_its_own_gate_report(params, tmp_path):
    params = params.model_copy(update={"root": tmp_path})
    p = params.paths
    p.gate_markdown.parent.mkdir(parents=True, exist_ok=True)
    p.gate_markdown.write_text("# Gate\n\nFAIL\n")
    p.gate_report.write_text("<html><body><h1>Gate</h1></body></html>")
    p.gate_decision.write_text('{"verdict": "fail"}')
    rec = _night(tmp_path, reports=str(p.night("2026-03-01")))
    copied = copy_gate_report(params, rec)
    assert len(copied) == 3
    night = p.night("2026-03-01")
    md = (night / "gate" / p.gate_markdown.name).read_text()
    assert md.startswith("# Night 2026-03-01: challenger v5 against champion v4") and "FAIL" in md
    page = (night / "gate" / p.gate_report.name).read_text()
    assert page.index("challenger v5") < page.index("<h1>Gate</h1>")
    (night / "drift").mkdir()
    (night / "drift" / "drift.html").write_text("<html></html>")
    save_record(params, rec)
    summary = (night / "summary.html").read_text()
    assert (night / "summary.json").is_file()
    for f in reports_of(night):
        assert f'href="{f}"' in summary
    assert "drift/drift.html" in reports_of(night) and "summary.json" not in reports_of(night)

"""The MLflow UI in a real browser (issue 16): a registered version's page shows its verdict
without scrolling, and its model card (issue 18) opens from the run.

One ``mlflow server`` on a SQLite store in a temporary folder, one headless Chromium session
(Debian's, driven through chromedriver) at 1280x800. Two challengers are registered the way
``register`` registers them (the session's prefit models; nothing trained): one the gate
passed, one it rejected. For each, the version's page is opened and the verdict's text is
looked up in the rendered DOM: it must be drawn inside the first viewport, with the page not
scrolled. The screenshots are kept in a folder the test prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.stages.gate import Decision
from pipelines.stages.gate.rules import Check
from tests.support import screens
from tests.support.browser import Chromium, browser, find_chromium, free_port
from tests.support.mlflow_server import mlflow_server
from tests.support.registry import make_params

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC).isoformat()
WIDTH, HEIGHT = 1280, 800
# where the text is drawn: the smallest visible element holding it, and the viewport
WHERE = """
const text = arguments[0];
const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walk.nextNode(); node; node = walk.nextNode()) {
  if (!node.textContent.includes(text)) continue;
  const el = node.parentElement;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0 || !el.checkVisibility()) continue;
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, tag: el.tagName,
          scrollY: window.scrollY, width: window.innerWidth, height: window.innerHeight};
}
return null;
"""


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    found, why = find_chromium()
    if found is None:
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory, prefit, adult_reference) -> Iterator[dict[str, Any]]:
    """Two registered versions (passed, rejected) and an MLflow server showing them."""
    root = tmp_path_factory.mktemp("browser")
    t0 = time.monotonic()
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("RETRAIN_MLFLOW_UI_URL", ui)  # the links in the descriptions: this server
        mp.setenv("RETRAIN_SIGNING_KEY", str(root / "keys" / "signing.key"))
        params = make_params(root / "ws", "browser-check")
        ok = Decision(
            "pass", ("all 2 checks passed", "not judged: no champion yet"),
            (Check("roc_auc", "metric", "pass", "0.90", ">= 0.80", "ok"),
             Check("roc_auc vs champion", "comparison", "skip", None, "",
                   "no champion yet: only absolute checks apply")), None, AT,
        )  # fmt: skip
        bad = Decision(
            "fail", ("roc_auc 0.60 [0.55, 0.65] below 0.80",),
            (Check("roc_auc", "metric", "fail", "0.60", ">= 0.80", "low"),), None, AT,
        )  # fmt: skip
        versions = {}
        for name, model, decision in (("passed", "a", ok), ("rejected", "b", bad)):
            rec = screens.log_run(params, prefit[model], adult_reference, f"challenger {name}")
            screens.assess(params, prefit[model], adult_reference)
            ev = screens.evaluation(params, prefit[model], adult_reference)
            versions[name] = (rec, screens.judge(params, rec, decision, ev))
    print(f"\nregistered in {time.monotonic() - t0:.1f} s")
    with mlflow_server(root, params.tracking_uri, port=port):
        print(f"server up in {time.monotonic() - t0:.1f} s")
        yield {"ui": ui, "params": params, "versions": versions, "root": root}


def _in_first_viewport(where: dict[str, Any] | None) -> bool:
    return bool(
        where
        and where["scrollY"] == 0
        and 0 <= where["top"] < where["bottom"] <= where["height"]
        and 0 <= where["left"] < where["right"] <= where["width"]
    )


def test_a_version_page_shows_its_verdict_without_scrolling(chromium, mlflow_ui):
    ui, params = mlflow_ui["ui"], mlflow_ui["params"]
    name = params.mlflow.registered_model
    shots = mlflow_ui["root"] / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    verdicts = {
        "passed": "PASSED the gate: promoted to champion",
        "rejected": "REJECTED by the gate: roc_auc 0.60 [0.55, 0.65] below 0.80",
    }
    with browser(chromium, mlflow_ui["root"] / "chromedriver.log", WIDTH, HEIGHT) as b:
        assert b.run("return [window.innerWidth, window.innerHeight];") == [WIDTH, HEIGHT]
        for kind, text in verdicts.items():
            rec, reg = mlflow_ui["versions"][kind]
            b.open(f"{ui}/#/models/{name}/versions/{reg.version}")
            where = b.wait_for(WHERE, 30, text)
            shot = b.screenshot(shots / f"version-{reg.version}-{kind}.png")
            print(f"{shot.name}: {text!r} drawn at {where}")
            assert _in_first_viewport(where), f"{text!r} not in the first viewport: {where}"
            card = b.wait_for(WHERE, 5, "Model card: runs:/")
            assert card, "the description links the model card"
            below = b.run(WHERE, "release.plan")  # a tag: on the page, under the fold
            assert below and not _in_first_viewport(below), below

        rec, reg = mlflow_ui["versions"]["passed"]
        b.open(f"{ui}/#/experiments/{rec['experiment_id']}/runs/{rec['run_id']}"
               "/artifacts/model_card/model_card.html")  # fmt: skip
        shown, deadline = None, time.monotonic() + 30
        while not shown and time.monotonic() < deadline:  # the artifact view's frame
            shown = b.frame_text("iframe")
            time.sleep(0.25)
        shot = b.screenshot(shots / f"version-{reg.version}-model-card.png")
        print(f"{shot.name}: the card's HTML as the run's artifact view shows it")
        assert shown and shown.startswith(f"Model card: {name} v{reg.version}"), shown
        assert "PASSED the gate: promoted to champion" in shown and "Intended use" in shown

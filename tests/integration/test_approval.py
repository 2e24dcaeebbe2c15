"""Human approval between `register` and `deploy`, on the real Airflow components (scheduler,
dag-processor and api-server on PostgreSQL, LocalExecutor), answered through the REST API the
UI's *Required actions* page uses (``PATCH .../taskInstances/approve/-1/hitlDetails``).

The workspace (copied from the session's base workspace, champion v1) sets
``deploy.approval: required``, and its gate margins are relaxed so that every forced retrain
passes the gate: the approval is what is under test here, not the gate. Three nights, one after
the other (one run at a time):

1. approved by ``admin`` with a reason: ``promote`` moves ``champion`` to v2, ``deploy`` runs;
2. rejected by ``admin``: v3 is tagged ``approval=rejected``, v2 stays champion (and serving:
   nothing was deployed), the run succeeds;
3. not answered within ``approval_timeout_minutes``: the scheduler answers the default (Reject)
   and v4 is tagged ``approval=timed_out``.

``skip_deploy`` keeps serving out of it (``deploy`` still runs after an approval, and skips
itself): the serving side of a promotion is tested in ``test_redeploy.py``.

Then the same nights in Airflow's own UI, in a real browser (Debian's Chromium, headless): the
grid after a promoted and a rejected night, the rejected night's page with its note, its
``summary`` task with the buttons to MLflow and the night's page, and the DAG list; the
screenshots are kept in ``reports/screenshots/airflow/`` (the test prints where).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.airflow_servers import (
    DAG_ID,
    MLFLOW_UI,
    Api,
    answer_hitl,
    dag_runs,
    extra_links,
    hitl_path,
    log_text,
    note_parts,
    run_path,
    task_instances,
    trigger,
    use_workspace,
    wait_dag_loaded,
    wait_deferral_settled,
    wait_run_done,
    wait_task_state,
)
from tests.support.browser import browser, find_chromium
from tests.support.nights import base_workspace, mlflow_client, mlflow_names, notifications
from tests.support.nights import record as night_record

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APPROVED, REJECTED, TIMED_OUT = "2026-04-01", "2026-04-02", "2026-04-03"
NIGHT_S = 900  # a forced retrain on 2 shared cores, with room
# kept after the session (git-ignored reports/), unlike a temporary folder
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots" / "airflow"


@pytest.fixture(scope="module")
def airflow(local_airflow, tmp_path_factory: pytest.TempPathFactory):
    """The session's servers on PostgreSQL, switched to a workspace that requires approval."""
    dest = tmp_path_factory.mktemp("airflow_approval") / "project"
    dep = use_workspace(local_airflow, base_workspace(tmp_path_factory), dest)
    set_params(dep.ws, approval="required")
    return dep


def set_params(ws: Path, **deploy: Any) -> None:
    raw = yaml.safe_load((ws / "params.yaml").read_text())
    raw["deploy"].update(deploy)
    raw["gate"].update(non_inferiority_margin=0.05, fairness_regression_margin=0.1)
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def night(ws: Path, api: Api, day: str, **more: Any) -> str:
    """A forced retrain of a stable batch for ``day`` (``more``: other fields of the form);
    the run id."""
    from pipelines.config import load_params
    from pipelines.demo.simulate import write_scenario

    write_scenario(load_params(ws / "params.yaml"), day, "stable")
    form = {"date": day, "batch": None, "force_retrain": True, "skip_deploy": True}
    return trigger(api, {**form, "dry_run": False, **more})


def registry_state(ws: Path) -> tuple[dict[str, str], Any]:
    """(aliases, client) of the workspace's registered model."""
    model, _ = mlflow_names(ws)
    c = mlflow_client(ws)
    return {k: str(v) for k, v in c.get_registered_model(model).aliases.items()}, c


def version_tags(ws: Path, version: str) -> dict[str, str]:
    model, _ = mlflow_names(ws)
    return dict(mlflow_client(ws).get_model_version(model, version).tags)


def history(ws: Path) -> list[dict[str, Any]]:
    path = ws / "reports" / "registry" / "history.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


def waiting_for(dep: Any, run_id: str, version: str, champion: str) -> dict[str, Any]:
    """Wait until ``approve`` asks; check what it asks and that nothing moved meanwhile."""
    wait_task_state(dep.api, run_id, "approve", "awaiting_input", NIGHT_S, dep.logs)
    wait_deferral_settled(run_id, "approve", 120, dep.logs)
    request = dep.api.get(hitl_path(run_id, "approve"))
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert f"v{version} to champion" in request["subject"], request
    assert f"v{champion} stays champion and keeps serving" in request["body"], request
    assert request["responded_at"] is None
    aliases, _ = registry_state(dep.ws)
    assert aliases["champion"] == champion and aliases["pending"] == version, aliases
    assert version_tags(dep.ws, version)["approval"] == "pending"
    return request


def states(api: Api, run_id: str) -> dict[str, str]:
    return {t: ti["state"] for t, ti in task_instances(api, run_id).items()}


def test_approved_rejected_and_unanswered_nights(airflow):
    with airflow.report_on_failure():  # the components' and the last tasks' logs on failure
        three_nights(airflow)


def three_nights(dep: Any) -> None:
    api, ws, logs = dep.api, dep.ws, dep.logs
    wait_dag_loaded(api, logs)
    status, body = api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    assert status == 200 and body["is_paused"] is False, body

    # ---- 1. approved: promote moves the champion, deploy runs after it
    run_id = night(ws, api, APPROVED)
    waiting_for(dep, run_id, version="2", champion="1")
    status, answer = answer_hitl(api, run_id, "approve", "Approve", {"reason": "metrics hold"})
    assert status == 200 and answer["responded_by"]["name"] == "admin", (status, answer)
    status, again = answer_hitl(api, run_id, "approve", "Reject")
    assert status == 409, (status, again)  # an answer stands: no second one
    run = wait_run_done(api, run_id, NIGHT_S, logs)
    tasks = states(api, run_id)
    assert run["state"] == "success", tasks
    for t in ("register", "needs_approval", "approve", "promote", "summary"):
        assert tasks[t] == "success", (t, tasks)
    assert tasks["register_rejected"] == "skipped" and tasks["watcher"] == "skipped"
    deploy = task_instances(api, run_id)["deploy"]  # it ran, and skipped itself (skip_deploy)
    assert deploy["state"] == "skipped", deploy
    assert "skip_deploy: serving left as it is" in log_text(api, run_id, "deploy", 1)

    aliases, _ = registry_state(ws)
    assert aliases == {"champion": "2", "previous": "1"}, aliases
    tags = version_tags(ws, "2")
    assert tags["approval"] == "approved" and tags["approval.by"] == "admin"
    assert tags["approval.reason"] == "approved: metrics hold" and tags["status"] == "champion"
    kinds = [(e["kind"], e["version"]) for e in history(ws)]
    assert kinds[-3:] == [("registration", "2"), ("approval", "2"), ("promotion", "2")]
    promotion = history(ws)[-1]
    assert promotion["actor"].startswith(f"airflow:{DAG_ID}/{run_id}")
    assert "approved by admin" in promotion["reason"]
    rec = night_record(ws, APPROVED)
    assert rec["outcome"] == "promoted" and rec["promoted"] == rec["serving"] == "2"
    assert note_parts(run["note"])[0] == f"{APPROVED}: promoted v2 (was v1)", run
    assert tasks["night_promoted"] == "success"
    assert rec["gate"]["approval"]["decision"] == "approved"
    assert rec["gate"]["approval"]["by"] == "admin"
    # one promotion notification, from the task that promoted (register only held v2)
    alerts = [(a["event"], a["task_id"]) for a in notifications(ws)]
    assert alerts == [("promotion", "promote")], alerts

    # ---- 2. rejected: the champion keeps its alias and keeps serving; who and why recorded.
    # The params ask no approval: the form asks it for this night
    set_params(ws, approval="none")
    run_id = night(ws, api, REJECTED, approval="required")
    waiting_for(dep, run_id, version="3", champion="2")
    status, answer = answer_hitl(api, run_id, "approve", "Reject", {"reason": "not this week"})
    assert status == 200, (status, answer)
    run = wait_run_done(api, run_id, NIGHT_S, logs)
    tasks = states(api, run_id)
    assert run["state"] == "success", tasks  # a rejection is an outcome, not an error
    assert tasks["approve"] == "success" and tasks["summary"] == "success"
    assert tasks["promote"] == "skipped" and tasks["deploy"] == "skipped", tasks
    assert tasks["watcher"] == "skipped"
    assert tasks["night_rejected"] == "success" and tasks["night_promoted"] == "skipped"
    note = f"{REJECTED}: rejected v3: approval rejected by admin: rejected: not this week; "
    text, link = note_parts(run["note"])
    assert text == note + "v2 serving", run
    # a rejected version's buttons: its page in MLflow, its run, the night's summary
    assert link and link.startswith(MLFLOW_UI), run
    model = mlflow_names(ws)[0]
    links = extra_links(api, run_id, "summary")
    assert links["MLflow: the model version"] == f"{MLFLOW_UI}/#/models/{model}/versions/3"
    assert links["Night summary (HTML)"] == f"{link}/artifacts/night/summary.html", links
    assert extra_links(api, run_id, "outcome") == links
    registered = extra_links(api, run_id, "register")
    assert registered["MLflow: the model version"] == links["MLflow: the model version"]
    status, log = api.call("GET", f"{run_path(run_id)}/taskInstances/deploy/logs/1")
    assert status == 404 or "skip_deploy" not in json.dumps(log), log  # never ran

    aliases, _ = registry_state(ws)
    assert aliases == {"champion": "2", "previous": "1"}, aliases  # no pending left
    tags = version_tags(ws, "3")
    assert tags["approval"] == "rejected" and tags["approval.by"] == "admin"
    assert tags["approval.reason"] == "rejected: not this week"
    assert tags["status"] == "not_approved"
    last = history(ws)[-1]
    assert (last["kind"], last["version"], last["actor"]) == ("approval", "3", "admin")
    rec = night_record(ws, REJECTED)
    assert rec["outcome"] == "not_promoted" and rec["promoted"] is None
    assert rec["serving"] == "2"
    assert rec["gate"]["verdict"] == "pass"
    assert rec["gate"]["approval"] == {
        "version": "3",
        "decision": "rejected",
        "by": "admin",
        "at": tags["approval.at"],
        "reason": "rejected: not this week",
    }
    assert len(notifications(ws)) == 1  # nothing promoted, nothing failed

    # ---- 3. nobody answers: the scheduler answers Reject when the timeout passes
    set_params(ws, approval="required", approval_timeout_minutes=0.1)  # 6 s
    run_id = night(ws, api, TIMED_OUT)
    run = wait_run_done(api, run_id, NIGHT_S, logs)
    tasks = states(api, run_id)
    assert run["state"] == "success", tasks
    assert tasks["approve"] == "success" and tasks["promote"] == "skipped"
    answered = api.get(hitl_path(run_id, "approve"))
    assert answered["chosen_options"] == ["Reject"] and answered["responded_by_user"] is None
    aliases, _ = registry_state(ws)
    assert aliases["champion"] == "2" and "pending" not in aliases, aliases
    tags = version_tags(ws, "4")
    assert tags["approval"] == "timed_out" and tags["approval.by"].startswith("nobody")
    assert "no answer within 0.1 minutes" in tags["approval.reason"]
    rec = night_record(ws, TIMED_OUT)
    assert rec["outcome"] == "not_promoted" and rec["serving"] == "2"
    assert rec["gate"]["approval"]["decision"] == "timed_out"


def test_the_nights_on_airflow_s_own_screens(airflow):
    """The grid, a run's page and a task's page of the nights above, as a browser draws them
    (1600x1000); a screenshot of each, listed with what it shows."""
    nights = {
        (r.get("conf") or {}).get("date"): r
        for r in dag_runs(airflow.api)
        if r["state"] in ("success", "failed")
    }
    if APPROVED not in nights or REJECTED not in nights:
        pytest.skip("needs the nights of test_approved_rejected_and_unanswered_nights")
    chromium, why = find_chromium()
    if chromium is None:
        pytest.skip(why)
    rejected = nights[REJECTED]["dag_run_id"]
    base, shots = airflow.api.base, SCREENSHOTS
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    with browser(chromium, shots / "chromedriver.log", 1600, 1000) as b:
        b.open(f"{base}/api/v2/monitor/health")  # the origin, to put the login cookie on
        assert airflow.api.token
        b.set_cookie("_token", airflow.api.token)  # the JWT the UI's own login sets
        pages = [
            # (file, path, texts it must show, what it shows)
            ("grid.png", f"/dags/{DAG_ID}", ["night_promoted", "night_rejected"],
             "the grid: one column per night, the outcome task that ran in each"),
            ("rejected-run.png", f"/dags/{DAG_ID}/runs/{rejected}",
             [f"{REJECTED}: rejected v3"], "the rejected night's run page with its note"),
            ("rejected-summary-links.png",
             f"/dags/{DAG_ID}/runs/{rejected}/tasks/summary/details",
             ["Night summary (HTML)", "MLflow: the model version"],
             "the rejected night's summary task with its buttons to MLflow and the page"),
            ("dag-list.png", "/dags", [DAG_ID, "retrain-live-trigger"],
             "the DAG list: the schedule column as Airflow 3.3 draws an asset-or-cron one"),
        ]  # fmt: skip
        missing = {}
        for name, path, texts, what in pages:
            b.open(base + path)
            found = [t for t in texts if b.page_has(t, 60)]
            shot = b.screenshot(shots / name)
            print(f"{shot.name}: {what}; shows {found}")
            if found != texts:
                missing[name] = sorted(set(texts) - set(found))
    assert not missing, f"not on the screen: {missing} (screenshots in {shots})"

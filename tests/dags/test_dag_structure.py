"""The DAG file: it imports without errors, parses in tens of milliseconds without heavy
imports, and has the shape, branches, schedule, params form, notifications and approval step it
documents.

The DagBag is loaded in a fresh interpreter (its own AIRFLOW_HOME, clean ``sys.modules``) so the
import check sees exactly what parsing the DAG file pulls in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.night.outcome import OUTCOME_WORDS
from pipelines.stages import NIGHT_STAGES

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_FILE = DAGS / "retrain_nightly.py"
DAG_ID = "retrain_nightly"

# What a parse must never pull in (each costs 0.3-2 s; see STACK-NOTES).
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "sklearn",
    "mlflow",
    "great_expectations",
    "evidently",
    "dvc",
    "fairlearn",
    "matplotlib",
)

PROBE = r"""
import json, sys, time
from datetime import timedelta

import airflow.sdk  # preloaded by the dag-processor: not part of a parse
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG, Param, TriggerRule, dag, task  # noqa: F401  (the processor has them)

dag_file = sys.argv[1]
before = set(sys.modules)
t0 = time.perf_counter()
bag = DagBag(dag_folder=dag_file)
first = time.perf_counter() - t0
loaded = sorted(set(sys.modules) - before)
times = []
for _ in range(5):
    t0 = time.perf_counter()
    DagBag(dag_folder=dag_file)
    times.append(time.perf_counter() - t0)

out = {
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dags),
    "first_parse_s": first,
    "parse_s": min(times),
    "loaded": loaded,
}
d = bag.dags.get("retrain_nightly")
if d is not None:
    def callbacks(cbs):
        cbs = cbs if isinstance(cbs, list) else ([cbs] if cbs else [])
        return [getattr(c, "__name__", type(c).__name__) for c in cbs]

    out["dag"] = {
        "schedule": getattr(getattr(d.timetable, "timetable", d.timetable), "expression", None),
        "timetable": type(d.timetable).__name__,
        "cron_timetable": type(getattr(d.timetable, "timetable", d.timetable)).__name__,
        "description": d.description,
        "catchup": d.catchup,
        "max_active_runs": d.max_active_runs,
        "dagrun_timeout_s": d.dagrun_timeout.total_seconds() if d.dagrun_timeout else None,
        "tags": sorted(d.tags),
        "owner": d.owner,
        "doc_md": d.doc_md,
        "params": {k: d.params.get_param(k).schema for k in d.params},
        "defaults": {k: d.params.get_param(k).value for k in d.params},
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
                "retry_delay_s": t.retry_delay.total_seconds(),
                "max_retry_delay_s": (t.max_retry_delay or timedelta(0)).total_seconds(),
                "on_failure": callbacks(t.on_failure_callback),
                "on_success": callbacks(t.on_success_callback),
                "operator": type(t).__name__,
                "bases": [c.__name__ for c in type(t).__mro__],
                "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
                "links": {l.name: l.xcom_key for l in t.operator_extra_links},
                "retry_policy": [
                    (r.exception_path, r.action.value)
                    for r in getattr(getattr(t, "retry_policy", None), "rules", [])
                ],
            }
            for t in d.tasks
        },
    }
    a = d.task_dict.get("approve")
    if a is not None:
        out["approve"] = {
            "options": a.options,
            "defaults": a.defaults,
            "multiple": a.multiple,
            "response_timeout_s": a.response_timeout.total_seconds(),
            "execution_timeout_s": a.execution_timeout.total_seconds(),
            "params": {k: a.params.get_param(k).schema for k in a.params},
            "downstream": sorted(a.downstream_task_ids),
        }
    checks = {}
    for name, value in [
        ("date", "2026-02-30"), ("date", "yesterday"), ("date", "2026-01-05"), ("date", None),
        ("batch", ""), ("batch", "data/landing/x.csv"), ("force_retrain", "yes"),
        ("dry_run", True), ("approval", "required"), ("approval", "maybe"),
        ("approval", None),
    ]:
        try:
            d.params.get_param(name).resolve(value)
            checks[f"{name}={value!r}"] = "ok"
        except Exception as err:
            checks[f"{name}={value!r}"] = type(err).__name__
    out["param_checks"] = checks
    # what the UI and the REST API show: the serialized DAG's timetable
    from airflow.serialization.serialized_objects import DagSerialization

    shown = DagSerialization.from_dict(DagSerialization.to_dict(d)).timetable
    out["shown_schedule"] = {"summary": shown.summary, "description": shown.description}
print("PROBE " + json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RETRAIN_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONDONTWRITEBYTECODE="1",  # measure a parse that compiles the file, as after an edit
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAG_FILE)],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[len("PROBE ") :])


def test_dagbag_has_no_import_errors(probe):
    assert probe["import_errors"] == {}
    assert probe["dag_ids"] == [DAG_ID]


def test_parse_is_fast_and_imports_nothing_heavy(probe):
    heavy = sorted({m.split(".")[0] for m in probe["loaded"]} & set(HEAVY))
    assert heavy == [], f"parsing the DAG file imports {heavy}: import them inside the tasks"
    project = [m for m in probe["loaded"] if m.split(".")[0] == "pipelines"]
    # only the list of stages, a module of constants
    allowed = {"pipelines", "pipelines.stages", "pipelines.airflow_adapter", "pipelines.settings"}
    allowed |= {"pipelines.night", "pipelines.night.outcome"}  # the outcome words
    assert set(project) <= allowed, project
    # tens of milliseconds (a loaded 2-core machine included); heavy imports cost seconds
    assert probe["parse_s"] < 0.1, f"parse {probe['parse_s'] * 1000:.0f} ms"
    print(
        f"\nDAG parse: first {probe['first_parse_s'] * 1000:.0f} ms, "
        f"then {probe['parse_s'] * 1000:.1f} ms"
    )


def test_schedule_and_run_settings(probe):
    d = probe["dag"]
    # the nightly cron, or the monitor's asset event (tests/dags/test_monitor_dag.py)
    assert d["schedule"] == "0 2 * * *" and d["timetable"] == "AssetOrTimeSchedule"
    assert d["cron_timetable"] == "CronTriggerTimetable"
    assert d["catchup"] is False
    assert d["max_active_runs"] == 1
    assert d["owner"] == "ml-platform"
    assert {"ml", "retraining", "nightly"} <= set(d["tags"])
    assert d["doc_md"] and d["doc_md"].strip().startswith("# Nightly retraining")
    # the UI's schedule column shows the asset alone: the cron is said where a DAG can say it
    assert probe["shown_schedule"] == {
        "summary": "Asset or 0 2 * * *",
        "description": "Triggered by assets or At 02:00",
    }
    assert "0 2 * * *" in d["description"] and "retrain-live-trigger" in d["description"]


def test_night_tasks_carry_buttons_to_mlflow_and_the_summary(probe):
    """Operator extra links: each a button on the task's page, kept as an XCom of its own."""
    tasks = probe["dag"]["tasks"]
    version = {"MLflow: the model version": "_link_ModelVersionLink"}
    run = {"MLflow: the challenger's run": "_link_ChallengerRunLink"}
    night = {
        "Night summary (HTML)": "_link_NightSummaryLink",
        "MLflow: the night's run": "_link_NightRunLink",
    }
    for t in ("register", "register_rejected"):
        assert tasks[t]["links"] == version | run, t
    for t in ("summary", "outcome", "night_promoted"):
        assert tasks[t]["links"] == version | run | night, t
    assert tasks["ingest"]["links"] == {} and tasks["night_rejected"]["links"] == {}


def test_one_task_per_stage_in_pipeline_order(probe):
    tasks = probe["dag"]["tasks"]
    chain = ["ingest", "assess", *NIGHT_STAGES[: NIGHT_STAGES.index("gate") + 1]]
    assert chain[2:] == ["window", "validate", "drift", "train", "evaluate", "fairness", "gate"]
    for up, down in zip(chain, chain[1:], strict=False):
        assert tasks[down]["upstream"] == [up], down
    assert tasks["register"]["upstream"] == ["gate"]
    assert tasks["register_rejected"]["upstream"] == ["gate"]
    # the human step: needs_approval either asks (approve) or goes straight on (promote)
    assert tasks["needs_approval"]["upstream"] == ["register"]
    assert tasks["approve"]["upstream"] == ["needs_approval"]
    assert tasks["promote"]["upstream"] == ["approve", "needs_approval", "register"]
    assert tasks["deploy"]["upstream"] == ["promote", "register"]
    assert tasks["summary"]["upstream"] == ["deploy", "register_rejected"]
    # every task but approve, whose Reject skips the tasks right after it (the watcher too),
    # and the outcome tasks, which come after the summary and only say what happened
    outcome = {"outcome", *(f"night_{w}" for w in OUTCOME_WORDS)}
    assert set(tasks["watcher"]["upstream"]) == set(tasks) - {"watcher", "approve"} - outcome
    # the stages the DVC pipeline runs are all there, under their own names
    assert set(NIGHT_STAGES) <= set(tasks)


def test_branches_and_trigger_rules(probe):
    tasks = probe["dag"]["tasks"]
    for branch in ("assess", "gate", "needs_approval"):
        assert "Branch" in tasks[branch]["operator"], branch
    assert tasks["assess"]["trigger_rule"] == "all_done"  # runs to skip the rest after a rejection
    assert tasks["summary"]["trigger_rule"] == "all_done"  # the night record is always written
    assert tasks["watcher"]["trigger_rule"] == "one_failed"  # a failed task fails the run
    assert tasks["watcher"]["retries"] == 0 and tasks["watcher"]["on_failure"] == []
    for t in ("window", "train", "gate", "register", "register_rejected", "approve", "deploy"):
        assert tasks[t]["trigger_rule"] == "all_success", t
    # promote runs after an approval, or straight after needs_approval when none was asked
    assert tasks["promote"]["trigger_rule"] == "none_failed_min_one_success"


def test_one_task_per_outcome_after_the_summary_and_asset_events(probe):
    tasks = probe["dag"]["tasks"]
    assert tasks["outcome"]["upstream"] == ["summary"] and "Branch" in tasks["outcome"]["operator"]
    assert tasks["outcome"]["trigger_rule"] == "all_done"  # a failed night has an outcome too
    assert OUTCOME_WORDS[0] == "promoted"
    assert tasks["night_promoted"]["upstream"] == ["outcome", "summary"]
    for word in OUTCOME_WORDS[1:]:
        assert tasks[f"night_{word}"]["upstream"] == ["outcome"], word
        assert tasks[f"night_{word}"]["operator"] == "EmptyOperator"  # no worker process
    assert tasks["assess"]["outlets"] == ["retrain-accepted-data"]
    assert tasks["night_promoted"]["outlets"] == ["retrain-champion"]
    # a rejected batch fails ingest at once; other errors of ingest are retried
    assert tasks["ingest"]["retry_policy"] == [["pipelines.airflow_adapter.BatchRejected", "fail"]]


def test_retries_with_backoff_and_notifications(probe):
    tasks = probe["dag"]["tasks"]
    for task_id, t in tasks.items():
        if task_id == "watcher":  # it only repeats a failure already notified
            assert t["retries"] == 0 and t["on_failure"] == []
            continue
        assert t["on_failure"] == ["notify_failure"], task_id
        if task_id == "deploy":  # a failed deploy has rolled the alias back: do not redo it
            assert t["retries"] == 0
            continue
        assert t["retries"] == 2 and t["backoff"] == 2.0, task_id
        assert t["retry_delay_s"] == 120 and t["max_retry_delay_s"] == 1800, task_id
    # the promotion callbacks run where the champion may move, and only if it did
    assert tasks["register"]["on_success"] == ["on_promotion"]
    assert tasks["promote"]["on_success"] == ["on_promotion"]


def test_params_form_is_validated_by_json_schema(probe):
    params = probe["dag"]["params"]
    assert set(params) == {"date", "batch", "force_retrain", "skip_deploy", "dry_run", "approval"}
    assert params["date"]["format"] == "date" and "null" in params["date"]["type"]
    assert "null" in params["batch"]["type"]
    for flag in ("force_retrain", "skip_deploy", "dry_run"):
        assert params[flag]["type"] == "boolean"
    assert probe["dag"]["defaults"] == {
        "date": None,
        "batch": None,
        "force_retrain": False,
        "skip_deploy": False,
        "dry_run": False,
        "approval": "params",  # as params.yaml; or required / not for this night
    }
    assert params["approval"]["enum"] == ["params", "required", "none"]
    checks = probe["param_checks"]
    assert checks["approval='required'"] == "ok"
    assert checks["approval='maybe'"] == checks["approval=None"] == "ParamValidationError"
    assert checks["date='2026-01-05'"] == "ok" and checks["date=None"] == "ok"
    assert checks["date='2026-02-30'"] == "ParamValidationError"
    assert checks["date='yesterday'"] == "ParamValidationError"
    assert checks["batch=''"] == "ParamValidationError"
    assert checks["force_retrain='yes'"] == "ParamValidationError"


def test_approve_is_an_approval_operator_that_rejects_by_default(probe):
    tasks = probe["dag"]["tasks"]
    assert "ApprovalOperator" in tasks["approve"]["bases"]
    approve = probe["approve"]
    assert approve["options"] == ["Approve", "Reject"] and approve["multiple"] is False
    assert approve["defaults"] == ["Reject"]  # no answer in time: rejected
    # Reject skips what follows it: the promotion, hence the deploy
    assert approve["downstream"] == ["promote"]
    # the parse-time timeout is the window the run leaves for an answer; the task sets the
    # params' deploy.approval_timeout_minutes at run time (the DAG file reads no params)
    window_s = 24 * 3600
    assert approve["response_timeout_s"] == window_s
    assert approve["execution_timeout_s"] == 600  # asking is quick; waiting is not executing
    assert probe["dag"]["dagrun_timeout_s"] == 6 * 3600 + window_s  # the run outlives the wait
    # the responder can say why; it is optional (the REST API may send no params)
    assert set(approve["params"]) == {"reason"} and "null" in approve["params"]["reason"]["type"]

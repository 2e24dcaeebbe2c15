"""The `retrain_monitor` DAG: parses light, runs hourly, and asks for a retrain only through the
asset `retrain_nightly` is scheduled on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
m = bag.dags["retrain_monitor"]
n = bag.dags["retrain_nightly"]
cond = getattr(n.timetable, "asset_condition", None)
heavy = sorted(x for x in ("pandas", "numpy", "sklearn", "mlflow", "evidently", "dvc")
               if x in sys.modules)
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "tasks": sorted(t.task_id for t in m.tasks),
    "downstream": {t.task_id: sorted(t.downstream_task_ids) for t in m.tasks},
    "outlets": {t.task_id: [getattr(o, "name", str(o)) for o in t.outlets] for t in m.tasks},
    "timetable": type(m.timetable).__name__,
    "nightly_timetable": type(n.timetable).__name__,
    "nightly_assets": sorted(a.name for a in (getattr(cond, "objects", ()) if cond else ())),
    "heavy": heavy,
}))
"""


def test_monitor_dag_shape_and_asset_trigger(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "dags")],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )  # fmt: skip
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert got["tasks"] == ["canary", "monitor", "needs_retrain", "request_retrain"]
    assert got["downstream"]["monitor"] == ["canary", "needs_retrain", "request_retrain"]
    assert got["downstream"]["needs_retrain"] == ["request_retrain"]
    assert got["outlets"]["request_retrain"] == ["retrain-live-trigger"]
    assert got["heavy"] == []
    # the nightly DAG runs on its cron or on the monitor's request, whichever comes first
    assert got["nightly_timetable"] == "AssetOrTimeSchedule"
    assert got["nightly_assets"] == ["retrain-live-trigger"]

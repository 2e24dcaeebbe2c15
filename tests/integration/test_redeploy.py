"""Redeploy on promotion, with continuous traffic: zero failed requests, versions switch.

Two ways of serving, both for real:

* the embedded default (no container engine): a `retrain serve` process follows the champion
  alias and swaps the model in place - promotion and rollback under load;
* blue/green containers behind nginx (`retrain deploy`), two replicas of each version:
  redeploy and rollback under load move both replicas, a replica killed under load costs at
  most its in-flight requests and gets no more after a second, and a deploy whose smoke check
  fails leaves the old version serving and the alias where it was.

One image build per version for the whole module (the later deploys reuse it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.edges import registry
from pipelines.release.replicas import running_replicas
from tests.support import faults
from tests.support.registry import register_model, registry_params
from tests.support.traffic import Traffic  # noqa: F401

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def assert_switch(t: Traffic, start: int, end: int, old: str, new: str) -> float:
    """Requests [start:end) went from ``old`` to ``new`` once; return the overlap in seconds.

    Behind nginx a reload briefly runs old and new workers side by side (the old ones finish
    what they accepted), so answers of both versions may interleave for a moment; the overlap
    must be short and the old version must not come back after it.
    """
    v, ts = t.versions[start:end], t.times[start:end]
    assert v and v[0] == old and v[-1] == new, segments(v)
    assert set(v) == {old, new}
    first_new = v.index(new)
    last_old = len(v) - 1 - v[::-1].index(old)
    overlap = ts[last_old] - ts[first_new] if last_old > first_new else 0.0
    assert overlap < 2.0, f"old and new answered side by side for {overlap:.2f}s"
    return overlap


def segments(versions: list[str]) -> list[str]:
    """The served versions in order, consecutive repeats collapsed: [1,1,2,2,1] -> [1,2,1]."""
    out: list[str] = []
    for v in versions:
        if not out or out[-1] != v:
            out.append(v)
    return out


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, adult_reference, adult_current):
    """v1 (champion) and v2 (a challenger), real models in a throwaway registry."""
    root = tmp_path_factory.mktemp("redeploy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        params = registry_params(
            root, adult_reference, [{"max_iter": 30}, {"max_iter": 10}], "serve-redeploy-test"
        )
        adult_current.head(200).to_parquet(params.paths.window_eval)
        yield params
        from pipelines.release import deploy

        engine = shutil.which("podman")
        for v in ("1", "2") if engine else ():
            subprocess.run([engine, "rmi", "-f", deploy.image_tag(params, v)], capture_output=True)


def _record(params) -> dict:
    from pipelines.serve.app import smoke_records

    records = smoke_records(params, 1)
    assert records is not None
    return records[0]


def _champion(params) -> str | None:
    return registry.champion_version(params)


def _break_artifact(params, version: str) -> None:
    """Corrupt a registered version's stored model file (a model that cannot be loaded)."""
    mv = registry.client(params).get_model_version(params.mlflow.registered_model, version)
    model_id = mv.source.rsplit("/", 1)[-1]
    target = params.root / "mlartifacts" / "models" / model_id / "artifacts" / "model.skops"
    assert target.is_file(), target
    target.write_bytes(b"not a model")


# --------------------------------------------------------------------------- local (embedded)
@pytest.fixture()
def local_server(two_models):
    from pipelines.release import deploy

    params = two_models
    port = deploy._free_port()
    address = f"127.0.0.1:{port}"
    log = open(params.root / f"serve-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--poll", "0.5", "--params", str(params.root / "params.yaml")],
        cwd=params.root, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip
    try:
        ok, detail = deploy.wait_ready(f"http://{address}", 120)
        assert ok, detail + (params.root / f"serve-{port}.log").read_text()[-2000:]
        yield address
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_local_server_swaps_in_place_on_promotion_and_rollback(two_models, local_server):
    from pipelines.release import deploy

    params = two_models
    registry.promote(params, "1", "start from v1")
    t = Traffic(local_server, _record(params))
    t.start()
    try:
        t.wait_for("1")
        registry.promote(params, "2", reason="promotion under load")
        t.wait_for("2")
        res = deploy.deploy(params, engine="local", address=local_server)
        assert res.ok, res.reason
        registry.rollback(params, reason="rollback under load")
        t.wait_for("1")
        time.sleep(0.5)
    finally:
        t.stop()
    assert t.failures == []
    assert segments(t.versions) == ["1", "2", "1"]
    assert len(t.versions) > 100


def test_local_deploy_of_a_broken_model_keeps_the_old_one(
    two_models, local_server, adult_reference
):
    from pipelines.release import deploy

    params = two_models
    registry.promote(params, "1", "start from v1")
    base = f"http://{local_server}"
    assert deploy.wait_ready(base, 30, "1")[0]
    assert deploy.deploy(params, engine="local", address=local_server).ok  # v1 is deployed
    bad = register_model(params, adult_reference.sample(3000, random_state=2), promote=False,
                         max_iter=5)  # fmt: skip
    _break_artifact(params, bad)
    t = Traffic(local_server, _record(params))
    t.start()
    try:
        t.wait_for("1")
        registry.promote(params, bad, reason="a broken model gets promoted")
        res = deploy.deploy(params, engine="local", address=local_server, ready_timeout=20)
        time.sleep(1.0)
    finally:
        t.stop()
    assert not res.ok
    assert f"v{bad}" in res.reason and "rejected" in res.reason
    assert t.failures == []
    assert set(t.versions) == {"1"}
    assert _champion(params) == "1"  # the alias went back
    history = deploy.read_history(params)
    assert history[-1]["ok"] is False and history[-1]["version"] == bad
    tags = registry.client(params).get_model_version(params.mlflow.registered_model, bad).tags
    assert tags["deploy.status"] == "failed"


# --------------------------------------------------------------------------- containers
@pytest.fixture()
def blue_green(two_models, container_engine):  # noqa: F811
    from pipelines.release import deploy

    params = two_models
    address = f"127.0.0.1:{deploy._free_port()}"
    yield params, container_engine, address
    state = deploy.read_state(params)
    for c in {
        *running_replicas(state.get("active")),
        *running_replicas(state.get("previous")),
    }:
        subprocess.run([container_engine, "rm", "-f", c], capture_output=True)
    deploy.stop_nginx(params)
    params.paths.deploy_state.unlink(missing_ok=True)


def _running(engine: str) -> list[str]:
    out = subprocess.run([engine, "ps", "--format", "{{.Names}}"], capture_output=True, text=True)
    return sorted(n for n in out.stdout.split() if n.startswith("serve-redeploy-test-"))


def _predictions_served(port: int) -> float:
    """POST /predict answered 200 by one replica, from its own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'retrain_serve_requests_total\{path="/predict",status="200"\} (\S+)', text)
    return float(m.group(1)) if m else 0.0


def _port(container: str) -> int:
    return int(container.rsplit("-", 1)[1])  # <model>-v<version>-<port>


def test_blue_green_two_replicas_redeploy_rollback_and_a_killed_replica(blue_green):
    from pipelines.release import deploy

    params, engine, address = blue_green
    registry.promote(params, "1", "start from v1")
    first = deploy.deploy(params, engine=engine, address=address, replicas=2)
    assert first.ok, first.reason
    assert len(first.containers) == 2 and _running(engine) == sorted(first.containers)
    t = Traffic(address, _record(params), keep_alive=False)
    t.start()
    try:
        t.wait_for("1")
        registry.promote(params, "2", reason="promotion")
        res = deploy.deploy(params, engine=engine, address=address, replicas=2)
        assert res.ok, res.reason
        t.wait_for("2")
        time.sleep(0.5)
        # least_conn sends to both new replicas
        assert all(_predictions_served(_port(c)) > 0 for c in res.containers), res.containers
        mark = len(t.versions)
        # as `retrain rollback` does it: engine, address and replica count from the recorded
        # deployment
        back = deploy.rollback_deploy(params, reason="rollback under load")
        assert back.ok, back.reason
        assert back.version == "1" and "reused" in back.checks[0] and back.replicas == 2
        t.wait_for("1")
        time.sleep(0.5)
    finally:
        t.stop()
    assert t.failures == []
    assert_switch(t, 0, mark, "1", "2")  # the redeploy
    assert_switch(t, mark, len(t.versions), "2", "1")  # the rollback
    active = deploy.read_state(params)["active"]
    assert _running(engine) == sorted(active["containers"])  # the old two stopped
    assert len(active["containers"]) == 2

    # One of the two replicas killed under load: four clients, keep-alive, so at most four
    # requests are in flight, about half of them on the victim. Those may fail (502: a POST
    # already sent is not retried); every later request goes to the survivor, also after
    # the victim's fail_timeout (5 s), when one request probes it and is passed on.
    victim, survivor = active["containers"]
    clients = [Traffic(address, _record(params)) for _ in range(4)]
    for c in clients:
        c.start()
    try:
        for c in clients:
            c.wait_for("1")
        time.sleep(0.5)
        subprocess.run([engine, "kill", victim], capture_output=True, check=True)
        killed = time.monotonic()
        before = _predictions_served(_port(survivor))
        time.sleep(7)
    finally:
        for c in clients:
            c.stop()
    failures = [f for c in clients for f in c.failures]
    late = [round(ft - killed, 2) for c in clients for ft in c.failure_times if ft > killed + 1]
    assert len(failures) <= len(clients), failures
    assert late == [], f"failed requests after the balancer should have taken it out: {late}"
    for c in clients:
        assert sum(1 for x in c.times if x > killed + 6) > 0  # all still answered after 6 s
    assert _predictions_served(_port(survivor)) > before


def test_failed_smoke_check_leaves_the_old_version_serving(blue_green):
    from pipelines.release import deploy

    params, engine, address = blue_green
    registry.promote(params, "1", "start from v1")
    assert deploy.deploy(params, engine=engine, address=address).ok
    registry.promote(params, "2", reason="a challenger whose server answers wrongly")
    t = Traffic(address, _record(params), keep_alive=False)
    t.start()
    try:
        t.wait_for("1")
        # the test's seams plugin, installed in the new container only: its answers shift
        res = deploy.deploy(
            params,
            engine=engine,
            address=address,
            container_env=faults.env(RETRAIN_SERVE_FAULT="shift"),
            container_mounts=[faults.PATH],
            replicas=2,
        )
        time.sleep(0.5)
    finally:
        t.stop()
    assert not res.ok and "smoke check failed" in res.reason
    assert "max |served - offline| = 1.00e-02" in res.reason  # the plugin's shift, nothing else
    assert t.failures == []
    assert set(t.versions) == {"1"}
    assert _champion(params) == "1"
    assert deploy.read_history(params)[-1]["ok"] is False
    running = subprocess.run(
        [engine, "ps", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout.split()
    assert not [n for n in running if n.startswith("serve-redeploy-test-v2-")]  # neither of two

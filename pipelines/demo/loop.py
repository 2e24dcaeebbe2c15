"""`retrain demo-loop` (the end of `make run`): the production loop, for real, on this machine.

serve -> log -> label -> monitor -> retrain -> gate -> shadow/canary -> decision, with real parts:

1. the champion is served by ``retrain serve`` (a separate process, the prediction log on);
2. a first wave of traffic is sent as HTTP requests with request ids: held-out rows the champion
   never trained on, ``simulate.loop.shifted_share`` of them from a population shifted on one
   feature, whose outcomes may follow a changed relationship (``simulate.loop.concept``: the
   labels above a quantile of another feature flipped): something for retraining to learn;
3. the true outcomes come back late: half through ``POST /feedback``, half as a file
   (``retrain labels``);
4. the monitor judges live drift and live performance and lands the outcomes as a batch;
5. when it asks for a retrain, the night runs on that batch (validation, drift, train,
   evaluation, fairness, gate) with ``deploy.rollout`` from ``simulate.loop.rollout``;
6. a gate-passed challenger goes out beside the champion (shadow: scores every request, answers
   none; canary: answers a share); a second, disjoint wave and its outcomes follow, and the
   canary decision (bootstrap CI of the difference between the arms, per-group fairness)
   promotes or rolls back; serving follows the registry.

The numbers end in one table. The loop runs once per workspace (``reports/loop/summary.json``);
a second ``make run`` prints the stored table.
"""

from __future__ import annotations

import csv
import http.client
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Params
from pipelines.demo.settings import loop_settings
from pipelines.demo.simulate import concept_change
from pipelines.files import read_json, write_json

Progress = Callable[[str], None]


class Client:
    """A keep-alive JSON client for the local server; reopens a connection closed while idle."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def _call(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> Any:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body, headers)
                r = self.conn.getresponse()
                return r.status, json.loads(r.read() or b"null")
            except (http.client.RemoteDisconnected, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, path: str, body: Any, request_id: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if request_id:
            headers["X-Request-ID"] = request_id  # a retry gets the same id: logged once
        status, data = self._call("POST", path, json.dumps(body), headers)
        return int(status), data

    def get(self, path: str) -> Any:
        return self._call("GET", path, None, {})[1]


def waves(params: Params, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint waves of traffic from a drifted population: ``simulate.loop.shifted_share``
    of each from the held-out rows above a quantile of one numeric feature, the rest from the
    other held-out rows; only rows the champion never trained on (earlier nights drew their
    batches from the same file), so neither model is judged on rows it trained on."""
    cfg = params.simulate.loop
    numeric = params.dataset.features.numeric
    column = cfg.column or numeric[0]
    if column not in numeric:
        raise ValueError(
            f"simulate.loop.column: {column!r} is not a numeric feature {list(numeric)}"
        )
    source = pd.read_parquet(params.paths.prepared_current)
    rows = unseen_by_champion(params, source).sample(frac=1.0, random_state=seed)
    rows = concept_change(rows, source, params.dataset, cfg.concept, seed)
    high = rows[column] > source[column].quantile(cfg.quantile)
    shifted, rest = rows[high], rows[~high]
    n_shifted = round(cfg.rows * cfg.shifted_share)
    n_rest = cfg.rows - n_shifted
    if len(shifted) < n_shifted + 150 or len(rest) < n_rest + 150:
        raise ValueError(
            f"simulate.loop: {len(shifted)} unseen rows above the {cfg.quantile} quantile of "
            f"{column!r} and {len(rest)} others: too few for two waves with "
            f"simulate.loop.rows={cfg.rows}"
        )
    # the second wave keeps the first's mix, as far as the rows last
    k = min(len(shifted) - n_shifted, round((len(rest) - n_rest) * n_shifted / max(n_rest, 1)))
    m = min(len(rest) - n_rest, round(k * n_rest / max(n_shifted, 1)))
    first = pd.concat([shifted.iloc[:n_shifted], rest.iloc[:n_rest]])
    second = pd.concat([shifted.iloc[n_shifted : n_shifted + k], rest.iloc[n_rest : n_rest + m]])
    shuffle = {"frac": 1.0, "random_state": seed}
    return (
        first.sample(**shuffle).reset_index(drop=True),
        second.sample(**shuffle).reset_index(drop=True),
    )


def unseen_by_champion(params: Params, source: pd.DataFrame) -> pd.DataFrame:
    """``source`` without the rows of batches accepted before the champion was promoted (the
    batches its training window could hold). The promotion's time is in the registry's history
    and each accepted file carries its own; a batch whose time is unknown counts as seen."""
    from datetime import datetime

    from pipelines.edges import registry
    from pipelines.stages.window import read_accepted_at

    champion, history = registry.champion_version(params), registry.read_history(params)
    promoted = [
        e["at"] for e in history if (e.get("kind"), e.get("version")) == ("promotion", champion)
    ]
    at, when = read_accepted_at(params.paths.accepted), datetime.fromisoformat
    files = sorted(params.paths.accepted.glob("*.parquet"))
    batches = [
        pd.read_parquet(f)
        for f in files
        if not promoted or f.stem not in at or when(at[f.stem]) < when(promoted[-1])
    ]
    if not batches:
        return source
    feats = list(params.dataset.features.all)
    seen_rows = pd.concat(batches, ignore_index=True)[feats].drop_duplicates()
    hit = source[feats].merge(seen_rows.assign(_seen=True), on=feats, how="left")["_seen"]
    return source[hit.isna().to_numpy()]


def send_traffic(
    client: Client, frame: pd.DataFrame, params: Params, tag: str, per_request: int = 10
) -> pd.DataFrame:
    """POST the rows as requests of ``per_request`` records; returns who answered each row."""
    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    records = frame_records(frame, ServingSpec.from_params(params).fields)
    out = []
    failed = 0
    for start in range(0, len(records), per_request):
        rid = f"{tag}-{start // per_request}"
        status, body = client.post("/predict", records[start : start + per_request], rid)
        if status != 200:
            failed += 1
            continue
        for i in range(len(body["probabilities"])):
            out.append((rid, i, body["model_version"], start + i))
    if failed:
        raise RuntimeError(f"demo-loop: {failed} requests failed")
    answered = pd.DataFrame(out, columns=["request_id", "row", "model_version", "index"])
    answered["label"] = frame[params.dataset.target].to_numpy()[answered["index"]]
    return answered


def feed_back(client: Client, answered: pd.DataFrame, params: Params, folder: Path) -> None:
    """Half of the outcomes through POST /feedback, the other half as a file (`retrain labels`)."""
    from pipelines.monitor.labels import feed_outcomes

    half = len(answered) // 2
    api = answered.iloc[:half]
    outcomes = [
        {"request_id": r, "row": int(i), "label": lab}
        for r, i, lab in zip(api.request_id, api.row, api.label, strict=True)
    ]
    for start in range(0, len(outcomes), 1000):
        body = {"outcomes": outcomes[start : start + 1000]}
        while (answer := client.post("/feedback", body))[0] == 429:  # serve.rate_limit: wait
            time.sleep(1.0)
        if answer[0] != 202:
            raise RuntimeError(f"demo-loop: POST /feedback answered {answer[0]}: {answer[1]}")
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / f"outcomes-{int(time.time())}.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["request_id", "row", "label"])
        w.writerows(answered.iloc[half:][["request_id", "row", "label"]].itertuples(index=False))
    feed_outcomes(f, params)


def wait_for(what: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(step)
    return False


def run_loop(params: Params, progress: Progress = print) -> dict[str, Any]:
    """The loop above, with its settings in the workspace's params.yaml while it runs
    (:func:`~pipelines.demo.settings.loop_settings`); returns (and stores) its numbers."""
    done = read_json(params.paths.loop_summary)
    if done:
        progress(loop_table(done))
        return dict(done)
    with loop_settings(params) as settings:
        return _serve_and_loop(settings, progress)


def _serve_and_loop(params: Params, progress: Progress) -> dict[str, Any]:
    from pipelines.edges import registry
    from pipelines.monitor.run import run_monitor
    from pipelines.night.run import run_night
    from pipelines.release import deploy
    from pipelines.release.canary import control

    port = deploy._free_port()
    address = f"127.0.0.1:{port}"
    progress(f"== the loop: serving the champion on http://{address} ==")
    pid = deploy.start_local_server(params, address)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"address": address}
    try:
        client = Client(address)
        if not wait_for(lambda: _ready(address), 120):
            raise RuntimeError(
                f"demo-loop: the server did not get ready (see {params.paths.serving}/serve.log)"
            )
        res["champion_before"] = client.get("/version")["model_version"]
        drifted, more = waves(params, seed=params.simulate.seed)
        progress(f"  {len(drifted):,} records from the drifted population, as requests")
        answered = send_traffic(client, drifted, params, "loop-a")
        progress("  their outcomes arrive late: half by POST /feedback, half by file")
        time.sleep(params.serve.flush_seconds * 2 + 0.5)  # the log is written off the hot path
        feed_back(client, answered, params, params.paths.loop_outcomes)
        verdict = run_monitor(params)
        v = verdict.verdict
        progress(f"  monitor: {v.summary()}")
        res["traffic_rows"] = len(answered)
        res["monitor"] = {
            "drift_share": v.drift_share,
            "drifted_columns": v.drifted_columns,
            "live": v.live,
            "baseline": v.baseline,
            "retrain": v.retrain,
            "landed_rows": verdict.landed_rows,
            "reasons": v.reasons,
        }
        if not v.retrain:
            progress("  the monitor saw no reason to retrain: the loop stops here")
            return _finish(params, res, t0, progress)
        day = (
            Path(verdict.landed_to).stem
            if verdict.landed_to
            else datetime.now(UTC).date().isoformat()
        )
        progress(f"\n== the night the monitor asked for ({day}): the landed outcomes ==")
        night = run_night(params, day, force_retrain=True, progress=progress)
        res["night"] = {
            "date": day,
            "outcome": str(night.outcome),
            "gate": night.gate.verdict if night.gate else None,
        }
        # the night's release plan put a gate-passed challenger out beside the champion
        out = control.current(params)
        res["canary_version"] = out.version if out else None
        if out is None:
            progress("  no canary went out (the gate did not pass): the champion keeps serving")
            return _finish(params, res, t0, progress)
        progress(f"  v{out.version} is out in {out.mode} mode beside the champion")
        wait_for(lambda: client.get("/version").get("canary") is not None, 60)
        answered = send_traffic(client, more, params, "loop-b")
        time.sleep(params.serve.flush_seconds * 2 + 0.5)
        feed_back(client, answered, params, params.paths.loop_outcomes)
        decision = control.decide_and_act(params)
        res["canary_decision"] = decision
        progress(f"  canary: {decision.get('verdict')}: {'; '.join(decision.get('reasons', []))}")
        champion = registry.champion_version(params)
        wait_for(lambda: client.get("/version")["model_version"] == champion, 120)
        res["champion_after"] = client.get("/version")["model_version"]
        return _finish(params, res, t0, progress)
    finally:
        stop_server(pid)


def stop_server(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the server's process group (it writes its prediction log's last rows), wait."""
    import os
    import signal

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def _ready(address: str) -> bool:
    try:
        c = Client(address)
        c.conn.request("GET", "/ready")
        return c.conn.getresponse().status == 200
    except OSError:
        return False


def _finish(params: Params, res: dict[str, Any], t0: float, progress: Progress) -> dict[str, Any]:
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(params.paths.loop_summary, res, strict=False)
    progress("\n" + loop_table(res))
    return res


def loop_table(res: dict[str, Any]) -> str:
    m = res.get("monitor") or {}
    live = m.get("live") or {}
    dec = res.get("canary_decision") or {}
    rows = [
        ("served before", f"v{res.get('champion_before')}"),
        ("live traffic", f"{res.get('traffic_rows', 0):,} records, outcomes fed back"),
        ("live drift share", _num(m.get("drift_share"))),
        (
            "live metric",
            f"{_num(live.get('point'))} [{_num(live.get('lower'))}, {_num(live.get('upper'))}]"
            f" vs evaluated {_num(m.get('baseline'))}",
        ),
        (
            "monitor",
            f"RETRAIN: {'; '.join(m.get('reasons') or [])[:120]}"
            if m.get("retrain")
            else "no action",
        ),
        ("landed", f"{m.get('landed_rows', 0):,} labelled rows"),
        ("night", _night(res.get("night") or {}, held=bool(res.get("canary_version")))),
        (
            "challenger",
            f"v{res['canary_version']} out in {dec.get('mode', '-')} mode"
            if res.get("canary_version")
            else "-",
        ),
        ("second wave", _arms(dec)),
        (
            "decision",
            f"{str(dec.get('verdict', '-')).upper()}: {'; '.join(dec.get('reasons', []))[:160]}",
        ),
        ("served after", f"v{res.get('champion_after', res.get('champion_before'))}"),
        ("took", f"{res.get('seconds', 0):.0f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "The loop\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _night(night: dict[str, Any], held: bool) -> str:
    if not night:
        return "-"
    outcome = "challenger held for the rollout" if held else night.get("outcome")
    return f"{night.get('date', '-')}: gate {str(night.get('gate')).upper()}, {outcome}"


def _arms(dec: dict[str, Any]) -> str:
    """Labelled rows per arm and the CI of the difference, from the canary's decision."""
    d = dec.get("decision") or {}
    champ, can, diff = d.get("champion") or {}, d.get("canary") or {}, d.get("difference")
    if not champ:
        return "-"
    text = (
        f"{champ.get('rows', 0):,} / {can.get('rows', 0):,} labelled rows (champion / challenger)"
    )
    if diff:
        kind = "paired" if d.get("paired") else "unpaired"
        text += (
            f"; {d.get('metric')} difference {diff['point']:+.4f} "
            f"[{diff['lower']:+.4f}, {diff['upper']:+.4f}] ({kind})"
        )
    return text


def _num(x: Any) -> str:
    return "-" if x is None else f"{float(x):.3f}"

"""The deploy's checks over HTTP: a server is ready and serves the version asked for, and its
answers on a fixed sample equal the offline predictions of that version.

Used by :mod:`pipelines.release.deploy` and :mod:`pipelines.release.replicas` (re-exported by
the first); each replica of a deployment passes them before nginx sends it traffic.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from pipelines.config import Params
from pipelines.release.containers import DeployError


def http_json(url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Retrain-Probe": "deploy"}  # not traffic
    req = urllib.request.Request(url, data, headers, method="POST" if data else "GET")
    from pipelines.settings import settings

    token = settings().serve_token
    if token:  # the serving app asks for it on POST /predict
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(base_url: str, timeout: float, version: str | None = None) -> tuple[bool, str]:
    """Until ``/ready`` is 200 (and serves ``version``, if given), or the timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = http_json(base_url + "/ready", timeout=2)
            if status == 200 and (version is None or body.get("model_version") == version):
                return True, f"ready: v{body.get('model_version')}"
            last = f"/ready {status}: {body}"
            if version is not None:
                _, info = http_json(base_url + "/version", timeout=2)
                if version in (info.get("rejected") or {}):
                    return False, f"v{version} rejected by the server: {info['rejected'][version]}"
        except (OSError, ValueError) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(0.25)
    return False, f"not ready after {timeout:.0f}s ({last})"


def smoke_test(
    params: Params,
    base_url: str,
    version: str,
    sample: Any,
    tol: float = 1e-6,
    want: Any = None,
) -> tuple[bool, str]:
    """The server's answers on ``sample`` vs the offline predictions of that model version
    (``want``: those predictions, when already computed for another replica)."""
    import numpy as np

    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    if want is None:
        want = reference_scorer(params, version).predict_proba(sample)
    records = frame_records(sample, ServingSpec.from_params(params).fields)
    status, body = http_json(base_url + "/predict", {"records": records}, timeout=30)
    if status != 200:
        return False, f"/predict answered {status}: {body}"
    if str(body.get("model_version")) != str(version):
        return False, f"/predict served v{body.get('model_version')}, expected v{version}"
    got = np.asarray(body["probabilities"], dtype=np.float64)
    diff = float(np.max(np.abs(got - want))) if len(got) == len(want) else float("inf")
    ok = diff <= tol
    return ok, f"smoke: {len(got)} rows, max |served - offline| = {diff:.2e} (tolerance {tol:g})"


def reference_scorer(params: Params, version: str) -> Any:
    """A registered version's own ``predict_proba`` (:class:`pipelines.scoring.Scorer`), by the
    one verifying load: an unsigned or tampered version is refused, nothing of it deserialised."""
    from pipelines.scoring import Scorer
    from pipelines.serve.model import ServingSpec, load_registered

    spec, key = ServingSpec.from_params(params), params.paths.signing_public_key
    loaded = load_registered(params.tracking_uri, spec, str(version), key)
    return Scorer(loaded.scorer.model, params.dataset, f"models:/{spec.model_name}/{version}")


def smoke_sample(params: Params, n: int = 200) -> Any:
    import pandas as pd

    from pipelines.serve.app import smoke_records

    recs = smoke_records(params, n)
    if not recs:
        raise DeployError("no smoke sample: neither data/window/eval.parquet nor prepared data")
    return pd.DataFrame.from_records(recs)

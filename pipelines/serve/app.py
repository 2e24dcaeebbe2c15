"""The serving app: a bare ASGI application on uvicorn (httptools + uvloop).

Endpoints: ``POST /predict`` (one record as a JSON object, or a batch as a JSON array,
``{"records": [...]}`` or columns: ``{"columns": [...], "data": [[...], ...]}``),
``POST /feedback`` (true outcomes of earlier answers, by request id),
``GET /health`` (alive), ``GET /ready`` (a model is loaded), ``GET /version`` (model version,
data version, image tag, canary) and ``GET /metrics`` (Prometheus). ``POST /predict?explain=k``
adds each record's ``k`` largest feature contributions (:mod:`pipelines.serve.explain`).

Every answer carries a ``request_id`` (the ``X-Request-ID`` header, else 128 random bits) and the
model version, and is appended to the prediction log (:mod:`pipelines.predlog`) off the hot path;
a request marked ``X-Retrain-Probe`` (the deploy's checks) is logged under the arm ``probe``,
never live traffic. ``/feedback`` takes outcomes only for answers this server gave recently
(:mod:`pipelines.serve.feedback`), with its own token when ``RETRAIN_FEEDBACK_TOKEN`` is set.
With a canary beside the champion (the registry alias ``canary``, its mode and share in the
version's tags), a stable hash of the request id sends ``share`` of requests to the canary; in
shadow mode every request is also scored by the challenger after the answer, and only logged.

The hot path does only per-request work: parse JSON (orjson), check and encode the records in one
pass (:mod:`pipelines.serve.inputs`, with the compiled scorer's codes; columns and larger
batches column by column, :mod:`pipelines.serve.columns`), queue them for the
micro-batcher (:mod:`pipelines.serve.batching`), write the answer. The micro-batcher scores
everything that arrived in the same event-loop turn with one call, so concurrent single-record
requests share the per-call cost. Bad input is answered with a 4xx that names the problem and
the field; it never reaches the model.

The module is over 400 lines on purpose: it is the one ASGI app, and its routes, the hot path
and the canary routing read best in one place.

Metrics live in :mod:`pipelines.serve.metrics` (prometheus_client, one registry per app). The
answer passes one named seam, ``serve.proba`` (:mod:`pipelines.seams`), where a test's plugin
can change it; without one (always, outside tests) it costs one environment lookup.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from pipelines import seams
from pipelines.predlog.answers import SharedAnswers
from pipelines.predlog.sinks import dead_letter_folder
from pipelines.predlog.writer import PredictionLog
from pipelines.serve.batching import MicroBatcher
from pipelines.serve.columns import Columns, read_columns
from pipelines.serve.explain import explain_option
from pipelines.serve.feedback import Conflict, FeedbackPolicy, RecentAnswers
from pipelines.serve.inputs import InputError, is_request_id, parse_outcomes
from pipelines.serve.metrics import ServingMetrics
from pipelines.serve.model import LoadedModel, ModelHolder, ServingSpec
from pipelines.serve.ratelimit import Buckets, Limited, RateLimits, client_key, retry_after_header
from pipelines.settings import MaskSecrets, mask_url, settings

if TYPE_CHECKING:  # the image carries the thread writer only (its server logs nothing)
    from pipelines.predlog.process import ProcessLog

log = logging.getLogger("pipelines.serve")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY = 1 << 20  # bytes
MAX_RECORDS = 10_000
_CHALLENGE = (b"www-authenticate", b'Bearer realm="predict"')
_FEEDBACK_CHALLENGE = (b"www-authenticate", b'Bearer realm="feedback"')
PROBE_HEADER = b"x-retrain-probe"  # set by the deploy's smoke check (and any other probe)
PROBE_ARM = "probe"  # logged under this arm: never live traffic for the monitor
_JSON = [(b"content-type", b"application/json")]


class ServingApp:
    """The ASGI application. ``holder`` is shared with the model watcher thread."""

    def __init__(
        self,
        holder: ModelHolder,
        spec: ServingSpec,
        image_tag: str | None = None,
        max_body: int = MAX_BODY,
        max_records: int = MAX_RECORDS,
        body_seconds: float | None = None,
        watch_interval: float | None = None,
        prediction_log: PredictionLog | ProcessLog | None = None,
        canary: ModelHolder | None = None,
        feedback: FeedbackPolicy | None = None,
        limits: RateLimits | None = None,
        shared: SharedAnswers | None = None,
    ) -> None:
        self.holder = holder
        self.canary = canary
        self.predlog = prediction_log
        self._ids = _RequestIds()
        self.recent = RecentAnswers(feedback)  # answers /feedback takes outcomes for
        self.shared = shared  # other replicas' answers, in a shared prediction log
        self.spec = spec
        self.image_tag = image_tag or settings().image_tag
        self.max_body = max_body
        self.max_records = max_records
        self.body_seconds = settings().serve_body_seconds if body_seconds is None else body_seconds
        self.watch_interval = watch_interval
        self.metrics = ServingMetrics(spec, holder)
        if prediction_log is not None:
            self.metrics.watch_log(prediction_log)
        self.batcher = MicroBatcher(self.metrics)
        self._batch_key_free = "records" not in spec.fields.names
        self._columns_free = not {"columns", "data"} & set(spec.fields.names)
        self._stop = threading.Event()
        self._started = False
        # POST /predict needs "Authorization: Bearer <token>" when a token is configured;
        # /feedback its own token when one is set, else the same
        env = settings()
        self._token = (env.serve_token or "").encode()
        self._feedback_token = (env.feedback_token or env.serve_token or "").encode()
        lim = limits or RateLimits()
        self._predict_limit = _buckets(lim.predict_per_second, lim.burst_seconds, "requests")
        self._feedback_limit = _buckets(
            lim.feedback_outcomes_per_second, lim.burst_seconds, "outcomes"
        )

    # ---- lifecycle
    def start(self) -> None:
        """Load the model in the background and start watching the source (idempotent)."""
        if self._started:
            return
        self._started = True

        def first_load() -> None:
            while not self._stop.is_set() and self.holder.current is None:
                self.holder.refresh()
                if self.holder.current is None:
                    self._stop.wait(1.0)
            if self.watch_interval:
                self.holder.watch(self.watch_interval, self._stop)
                if self.canary is not None:
                    self.canary.watch(self.watch_interval, self._stop)

        threading.Thread(target=first_load, name="model-loader", daemon=True).start()

    def stop(self) -> None:
        """Stop watching and write the prediction log's last rows (on shutdown, SIGTERM too)."""
        self._stop.set()
        if self.predlog is not None:
            self.predlog.close()
        if self.shared is not None:
            self.shared.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    self.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # ---- routing
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if path == "/predict":
            if method != "POST":
                return await self._error(send, path, 405, "use POST for /predict", "method")
            if self._token and not self._authorized(scope, self._token):
                self.metrics.request(path, 401)
                self.metrics.error("unauthorized")
                msg = "POST /predict needs a bearer token (Authorization: Bearer <token>)"
                body = orjson.dumps({"error": msg, "kind": "auth"})
                return await _respond(send, 401, body, [*_JSON, _CHALLENGE])
            if self._predict_limit is not None:
                try:
                    key = client_key(self._token, _address(scope))
                    self._predict_limit.take(key, 1, time.monotonic())
                except Limited as lim:
                    return await self._limited(send, path, lim)
            t0 = time.perf_counter()
            rid, probe = self._ids.of(scope)
            status, body, version = await self._predict(scope, receive, rid, probe)
            headers = [*_JSON, (b"x-request-id", rid.encode())]
            if version is not None:
                headers.append((b"x-model-version", version))
            await _respond(send, status, body, headers)
            self.metrics.observe_latency(time.perf_counter() - t0)
            self.metrics.request(path, status)
            return
        if path == "/feedback":
            if method != "POST":
                return await self._error(send, path, 405, "use POST for /feedback", "method")
            if self._feedback_token and not self._authorized(scope, self._feedback_token):
                self.metrics.request(path, 401)
                self.metrics.error("unauthorized")
                which = "feedback" if settings().feedback_token else "serving"
                msg = f"POST /feedback needs a bearer token (the {which} token)"
                body = orjson.dumps({"error": msg, "kind": "auth"})
                return await _respond(send, 401, body, [*_JSON, _FEEDBACK_CHALLENGE])
            status, body, extra = await self._feedback(scope, receive)
            self.metrics.request(path, status)
            return await _respond(send, status, body, [*_JSON, *extra])
        if method not in ("GET", "HEAD"):
            if path in ("/health", "/ready", "/version", "/metrics"):
                return await self._error(send, path, 405, f"use GET for {path}", "method")
            return await self._error(send, "other", 404, f"no such endpoint: {path}", "not_found")
        if path == "/health":
            status, body = 200, b'{"status":"alive"}'
        elif path == "/ready":
            cur = self.holder.current
            if cur is None:
                status = 503
                error = mask_url(self.holder.last_error)
                body = orjson.dumps({"status": "loading", "error": error})
            else:
                status = 200
                body = orjson.dumps({"status": "ready", "model_version": cur.version})
        elif path == "/version":
            status, body = 200, orjson.dumps(self.version_info())
        elif path == "/metrics":
            accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
            body, content_type = self.metrics.render(accept.decode("latin-1"))
            self.metrics.request(path, 200)
            return await _respond(send, 200, body, [(b"content-type", content_type.encode())])
        else:
            return await self._error(send, "other", 404, f"no such endpoint: {path}", "not_found")
        self.metrics.request(path, status)
        await _respond(send, status, body, _JSON)

    def version_info(self) -> dict[str, Any]:
        cur = self.holder.current
        info: dict[str, Any] = {
            "model": self.spec.model_name,
            "model_version": cur.version if cur else None,
            "data_version": cur.data_version if cur else {},
            "run_id": cur.run_id if cur else None,
            "image_tag": self.image_tag,
            "scorer": cur.scorer.mode if cur else None,
            "scorer_walk": cur.scorer.walker if cur else None,
            "source": cur.source if cur else None,
        }
        if self.holder.rejected:
            info["rejected"] = {v: mask_url(why) for v, why in self.holder.rejected.items()}
        can = self.canary.current if self.canary is not None else None
        if can is not None:
            info["canary"] = {
                "model_version": can.version,
                "mode": _mode(can),
                "share": _share(can),
            }
        info["prediction_log"] = None if self.predlog is None else mask_url(self.predlog.location)
        return info

    def _authorized(self, scope: Scope, want: bytes) -> bool:
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), want)
        return False

    async def _limited(self, send: Send, path: str, lim: Limited) -> None:
        self.metrics.request(path, 429)
        self.metrics.error("rate_limited")
        retry = retry_after_header(lim.retry_after)
        body = orjson.dumps({"error": lim.message, "kind": "rate_limited"})
        await _respond(send, 429, body, [*_JSON, *([retry] if retry else [])])

    async def _error(self, send: Send, path: str, status: int, msg: str, kind: str) -> None:
        self.metrics.request(path, status)
        self.metrics.error(kind)
        await _respond(send, status, orjson.dumps({"error": msg, "kind": kind}), _JSON)

    # ---- /predict
    async def _predict(
        self, scope: Scope, receive: Receive, rid: str, probe: bool = False
    ) -> tuple[int, bytes, bytes | None]:
        try:
            body = await self._read_body(scope, receive)
            model = self.holder.current
            if model is None:
                raise _Reject(503, "no model loaded yet", "not_ready")
            records, single = self._records(body)
            explain = explain_option(scope.get("query_string", b""), len(records))
            arm = "champion"
            challenger = self.canary.current if self.canary is not None else None
            shadow = challenger if challenger and _mode(challenger) == "shadow" else None
            if challenger is not None and shadow is None:
                if zlib.crc32(rid.encode()) % 10_000 < _share(challenger) * 10_000:
                    model, arm = challenger, "canary"
            X = model.scorer.encode(records)
            if explain and model.scorer.explainer() is None:
                raise _Reject(422, f"v{model.version} is not explained", "not_explained")
            # logged as received (one record as a list of one): no second encoding
            inputs = b"[" + body + b"]" if single else body
        except _Reject as r:
            self.metrics.error(r.kind)
            return r.status, r.body(), None
        except InputError as err:
            self.metrics.error(err.kind)
            problem = {"error": err.message, "kind": err.kind}
            if err.field is not None:
                problem["field"] = err.field
            return 422, orjson.dumps(problem), None
        try:
            proba = await self.batcher.submit(model, X, len(X))
        except Exception as err:  # noqa: BLE001 - validated input the model still refused
            log.exception("prediction failed")
            self.metrics.error("model_error")
            msg = f"the model could not score this input: {type(err).__name__}: {err}"
            return 500, orjson.dumps({"error": msg, "kind": "model_error"}), None
        proba = seams.adjust("serve.proba", proba)
        if self.predlog is not None:
            if probe:  # a smoke check or probe: logged apart, and no outcomes are taken for it
                self.predlog.append(rid, model.version, PROBE_ARM, inputs, proba)
            else:
                self.predlog.append(rid, model.version, arm, inputs, proba)
                self.recent.record(rid, len(proba), time.time())
        # the shadow scores in a later turn of the loop: the answer does not wait
        if shadow is not None and not probe:
            self._shadow(shadow, records, inputs, rid)
        spec = self.spec
        thr, pos, neg = spec.threshold, spec.positive_label, spec.negative_label
        if single:
            p = float(proba[0])
            out: dict[str, Any] = {
                "request_id": rid,
                "model_version": model.version,
                "probability": p,
                "label": pos if p >= thr else neg,
            }
        else:
            probs = proba.tolist()
            out = {
                "request_id": rid,
                "model_version": model.version,
                "probabilities": probs,
                "labels": [pos if p >= thr else neg for p in probs],
            }
        if explain:  # contributions to the log-odds: base_value + their sum
            shown = (  # the values beside each contribution, by field name
                [dict(zip(records.names, row, strict=True)) for row in records.data]
                if isinstance(records, Columns)
                else records
            )
            why = model.scorer.explain_encoded(X, shown, explain) or []
            out["explanation" if single else "explanations"] = why[0] if single else why
        return 200, orjson.dumps(out), model.version.encode()

    def _shadow(
        self, challenger: LoadedModel, records: list[Any] | Columns, inputs: bytes, rid: str
    ) -> None:
        """Queue the request for the shadow model (scored with the next micro-batch, after this
        answer); log its answer, send nothing."""
        try:
            X = challenger.scorer.encode(records)
        except InputError:
            return  # the champion's answer stands; the shadow model cannot read this input
        fut = self.batcher.submit(challenger, X, len(X))
        log_ = self.predlog

        def logged(f: Any) -> None:
            if f.cancelled() or f.exception() is not None:
                self.metrics.error("shadow_error")
            elif log_ is not None:
                log_.append(rid, challenger.version, "shadow", inputs, f.result())

        fut.add_done_callback(logged)

    # ---- /feedback
    async def _feedback(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Outcomes: ``{"outcomes": [{"request_id": ..., "row": 0, "label": ...}]}`` or a list."""
        try:
            body = await self._read_body(scope, receive)
            if self.predlog is None:
                raise _Reject(503, "no prediction log is configured", "no_log")
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as err:
                raise _Reject(400, f"malformed JSON: {err}", "malformed_json") from None
            labels = (self.spec.positive_label, self.spec.negative_label)
            parsed = parse_outcomes(data, labels)
            if self._feedback_limit is not None:
                key = client_key(self._feedback_token, _address(scope))
                self._feedback_limit.take(key, len(parsed), time.monotonic())
            await self._learn_shared(parsed)
            outcomes = self.recent.accept(parsed)
        except Limited as lim:
            self.metrics.error("rate_limited")
            retry = retry_after_header(lim.retry_after)
            body = orjson.dumps({"error": lim.message, "kind": "rate_limited"})
            return 429, body, [retry] if retry else []
        except _Reject as r:
            self.metrics.error(r.kind)
            return r.status, r.body(), []
        except InputError as err:
            self.metrics.error(err.kind)
            status = 409 if isinstance(err, Conflict) else 422
            problem = {"error": err.message, "kind": err.kind, "field": err.field}
            return status, orjson.dumps(problem), []
        n = self.predlog.append_outcomes(outcomes)
        return 202, orjson.dumps({"accepted": n}), []

    async def _learn_shared(self, outcomes: list[tuple[str, int, str]]) -> None:
        """Answers this process does not know, looked up in the shared log (another replica's)."""
        if self.shared is None:
            return
        missing = sorted({rid for rid, _, _ in outcomes if rid not in self.recent})
        if not missing:
            return
        ttl = self.recent.policy.ttl_seconds
        found = await asyncio.to_thread(self.shared.lookup, missing, ttl)
        for rid, answer in found.items():
            self.recent.learn(rid, answer.rows, answer.answered_at, answer.labels)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        length = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                length = v
            elif k == b"content-type" and b"json" not in v.lower():
                raise _Reject(
                    415, f"Content-Type must be application/json, got {v.decode('latin-1')}",
                    "content_type",
                )  # fmt: skip
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise _Reject(400, "invalid Content-Length header", "bad_request") from None
            if n > self.max_body:
                raise _Reject(
                    413, f"body of {n} bytes exceeds the limit of {self.max_body}", "too_large"
                )
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_seconds):  # a slow client's body is cut off
                return await self._read_chunks(receive, chunks, size)
        except TimeoutError:
            raise _Reject(
                408, f"the body did not arrive within {self.body_seconds:g} s", "body_timeout"
            ) from None

    async def _read_chunks(self, receive: Receive, chunks: list[bytes], size: int) -> bytes:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Reject(400, "client disconnected", "disconnected")
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise _Reject(
                        413, f"body exceeds the limit of {self.max_body} bytes", "too_large"
                    )
                chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _records(self, body: bytes) -> tuple[list[Any] | Columns, bool]:
        if not body.strip():
            raise _Reject(400, "empty body: send a JSON object or array of records", "empty_body")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise _Reject(400, f"malformed JSON: {err}", "malformed_json") from None
        if type(data) is dict:
            if self._batch_key_free and "records" in data:
                recs = data["records"]
                if len(data) != 1:
                    extra = sorted(k for k in data if k != "records")
                    raise InputError(
                        f"unknown top-level field(s) {extra} beside 'records'",
                        extra[0],
                        "unknown_field",
                    )
                if type(recs) is not list:
                    raise InputError("'records' must be an array of objects", "records", "shape")
                return self._check_batch(recs), False
            if self._columns_free and "columns" in data:
                cols = read_columns(data)
                self._check_batch(cols.data)
                return cols, False
            return [data], True
        if type(data) is list:
            return self._check_batch(data), False
        raise InputError(
            'expected a JSON object (one record), an array of records, {"records": [...]} or '
            '{"columns": [...], "data": [[...], ...]}',
            None,
            "shape",
        )

    def _check_batch(self, recs: list[Any]) -> list[Any]:
        if not recs:
            raise InputError("no records to score", None, "empty_batch")
        if len(recs) > self.max_records:
            raise _Reject(
                413, f"{len(recs)} records exceed the limit of {self.max_records}", "too_many"
            )
        return recs


class _RequestIds:
    """The request id: the client's ``X-Request-ID`` (up to 128 printable bytes), else 128
    random bits (32 hex digits): one answer's id tells nothing of any other's. And whether the
    request is a probe (``X-Retrain-Probe``), not live traffic."""

    def of(self, scope: Scope) -> tuple[str, bool]:
        k: bytes
        v: bytes  # an ASGI header: (name, value) as bytes
        rid = None
        probe = False
        for k, v in scope["headers"]:
            if k == b"x-request-id" and is_request_id(v):
                rid = v.decode()
            elif k == PROBE_HEADER and v:
                probe = True
        return (rid or os.urandom(16).hex()), probe


def _buckets(rate: float | None, burst_seconds: float, unit: str) -> Buckets | None:
    return None if rate is None else Buckets(rate, burst_seconds, unit)


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _mode(model: LoadedModel) -> str:
    return model.tags.get("canary.mode", "canary")


def _share(model: LoadedModel) -> float:
    try:
        return min(max(float(model.tags.get("canary.share", "0")), 0.0), 1.0)
    except ValueError:
        return 0.0


class _Reject(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def body(self) -> bytes:
        return orjson.dumps({"error": self.message, "kind": self.kind})


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    if status == 408:  # the rest of a slow body is not waited for: the connection goes
        headers = [*headers, (b"connection", b"close")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- running
def run(app: ServingApp, host: str, port: int, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn on httptools + uvloop (the lean stack), one process."""
    import gc

    import uvicorn

    from pipelines.serve.limits import bounded_headers

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:  # no log line carries a password
        handler.addFilter(MaskSecrets())
    # parsing a request allocates many small objects: collect the young generation less often
    gc.set_threshold(50_000, 20, 100)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=bounded_headers(),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        backlog=4096,
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()


def local_app(
    params: Any, watch_interval: float = 2.0, smoke_rows: int = 200, log: bool = True
) -> ServingApp:
    """The embedded default: the registry's champion, swapped in place when the alias moves,
    a canary beside it while the alias ``canary`` names one, and the prediction log."""
    import dataclasses

    from pipelines.serve.model import RegistrySource

    spec = ServingSpec.from_params(params)
    smoke = smoke_records(params, smoke_rows)
    key = params.paths.signing_public_key  # read at every load: made when the first is signed
    holder = ModelHolder(RegistrySource(params.tracking_uri, spec, key), smoke=smoke)
    canary_spec = dataclasses.replace(spec, alias="canary")
    canary = ModelHolder(
        RegistrySource(params.tracking_uri, canary_spec, key), smoke, optional=True
    )
    predlog = None
    shared = None
    if log:
        from pipelines.predlog.process import ProcessLog

        where = params.prediction_log
        # written by a process of its own: serving's GIL never waits on the log
        predlog = ProcessLog(
            where,
            flush_rows=params.serve.flush_rows,
            flush_seconds=params.serve.flush_seconds,
            # a PostgreSQL log's refused rows: in the workspace's log folder (data/live)
            dead_letter=settings().dead_letter
            or (dead_letter_folder(str(params.paths.live)) if "://" in where else None),
        )
        shared = SharedAnswers(where) if "://" in where else None  # replicas share the log
    fb = params.serve.feedback
    policy = FeedbackPolicy(fb.memory, fb.ttl_hours * 3600.0, fb.relabel)
    rl = params.serve.rate_limit
    limits = RateLimits(rl.predict_per_second, rl.feedback_outcomes_per_second, rl.burst_seconds)
    return ServingApp(
        holder,
        spec,
        watch_interval=watch_interval,
        prediction_log=predlog,
        canary=canary,
        feedback=policy,
        limits=limits,
        shared=shared,
    )


def smoke_records(params: Any, n: int = 200) -> list[dict[str, Any]] | None:
    """The fixed smoke sample: the first ``n`` rows of the evaluation window (else the prepared
    current data), as JSON records. None when neither exists yet."""
    import pandas as pd

    from pipelines.serve.fastpath import frame_records

    candidates = [
        params.paths.window_eval,
        params.paths.prepared_current,
    ]
    for p in candidates:
        if p.is_file():
            frame = pd.read_parquet(p).head(n)
            return frame_records(frame, ServingSpec.from_params(params).fields)
    return None

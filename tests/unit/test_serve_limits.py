"""What one client may cost `retrain serve`: a request head past the bound is answered 431 and
its connection closed; a body that does not arrive in time is answered 408 and the connection
closed. The head is fed to uvicorn's own protocol (no server started); the body's time is
tested at the ASGI level, with a client that sends half a body and then nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from pipelines.serve.app import ServingApp
from pipelines.serve.limits import bounded_headers
from pipelines.serve.model import ModelHolder, ServingSpec
from pipelines.settings import settings


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = b""
        self.closed = False

    def write(self, data: Any) -> None:
        self.out += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _feed(head: bytes, max_bytes: int) -> _Transport:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    cls = bounded_headers(max_bytes)
    config = uvicorn.Config(app, http=cls, lifespan="off", log_level="critical")
    config.load()
    proto = cls(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    proto.connection_made(transport)
    proto.data_received(head)
    await asyncio.sleep(0.05)  # the app's task runs
    return transport


@pytest.mark.parametrize("where", ["header", "url"])
def test_a_request_head_past_the_bound_is_431_and_closed(where):
    big = b"a" * 5000
    head = (
        b"GET /health" + (b"?q=" + big if where == "url" else b"") + b" HTTP/1.1\r\nhost: x\r\n"
        + (b"x-big: " + big + b"\r\n" if where == "header" else b"") + b"\r\n"
    )  # fmt: skip
    t = asyncio.run(_feed(head, 4096))
    assert t.out.startswith(b"HTTP/1.1 431 ") and t.closed
    assert b"exceed 4096 bytes" in t.out


def test_a_head_within_the_bound_is_served():
    head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-ok: " + b"a" * 3000 + b"\r\n\r\n"
    t = asyncio.run(_feed(head, 4096))
    assert t.out.startswith(b"HTTP/1.1 200 ") and not t.closed


def test_the_bounds_are_typed_settings():
    s = settings({"RETRAIN_SERVE_MAX_HEADER_BYTES": "8192", "RETRAIN_SERVE_BODY_SECONDS": "2.5"})
    assert (s.serve_max_header_bytes, s.serve_body_seconds) == (8192, 2.5)
    assert bounded_headers(None).max_header_bytes == settings().serve_max_header_bytes


async def _slow_post(app: ServingApp) -> tuple[list[dict[str, Any]], float]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
    }
    parts = [{"type": "http.request", "body": b'{"age": 3', "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if parts:
            return parts.pop(0)
        await asyncio.sleep(3600)  # the client never sends the rest
        raise AssertionError("unreachable")

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    t0 = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), 10)  # unbounded, the test fails here
    return sent, time.monotonic() - t0


def test_a_body_sent_too_slowly_is_cut_off_with_408_and_closed(params):
    spec = ServingSpec.from_params(params)
    app = ServingApp(ModelHolder(None, smoke=[]), spec, body_seconds=0.3)  # type: ignore[arg-type]
    sent, took = asyncio.run(_slow_post(app))
    start = sent[0]
    assert start["status"] == 408 and 0.3 <= took < 5
    assert (b"connection", b"close") in start["headers"]
    assert b"within 0.3 s" in sent[1]["body"]

"""What one client may cost the server: the size of a request's head and the time its body
may take.

Uvicorn's httptools protocol keeps every header it is sent; :class:`BoundedHeaders` counts the
request line and headers as they are parsed and answers ``431`` (connection closed) past
``RETRAIN_SERVE_MAX_HEADER_BYTES``. The body's time is bounded in the app
(:meth:`pipelines.serve.app.ServingApp._read_body`, ``RETRAIN_SERVE_BODY_SECONDS``): a client
sending its body slowly is answered ``408`` and its connection closed.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipelines.settings import settings


class _HeadTooLarge(Exception):
    pass


class BoundedHeaders(HttpToolsProtocol):
    """Uvicorn's httptools protocol with a bound on the request line plus headers, in bytes."""

    max_header_bytes = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge  # the parser stops; data_received answers (send_400_response)

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            return super().send_400_response(msg)
        text = f"request line and headers exceed {self.max_header_bytes} bytes".encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(text)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + text
        )
        self.transport.close()


def bounded_headers(max_bytes: int | None = None) -> type[BoundedHeaders]:
    """The protocol class for ``uvicorn.Config(http=...)`` with the configured bound."""
    bound = settings().serve_max_header_bytes if max_bytes is None else max_bytes
    return type("BoundedHeaders", (BoundedHeaders,), {"max_header_bytes": bound})

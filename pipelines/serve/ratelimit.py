"""How fast one client may send: a token bucket per credential, per endpoint.

``POST /predict`` is limited in requests per second, ``POST /feedback`` in outcomes per
second (a body of many outcomes costs as many). A client is its bearer token when the
endpoint has one (every holder of that token shares its bucket), else its address. Each bucket
holds ``burst_seconds`` worth of its rate: a client idle for a while may send that much at
once, then at the rate. Past it the answer is ``429`` with ``Retry-After``; a single request
larger than the whole bucket is told so, since waiting would not help. Memory is bounded: at
most ``max_keys`` buckets, the least recently used dropped first (a dropped bucket comes back
full, which only ever favours a client). Standard library only: the serving image carries it.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    """``serve.rate_limit`` in params.yaml, as plain data (the image has no pydantic)."""

    predict_per_second: float | None = None  # requests; None: no limit
    feedback_outcomes_per_second: float | None = 1000.0  # outcomes; None: no limit
    burst_seconds: float = 10.0


class Limited(Exception):
    """Over the rate: ``retry_after`` seconds until the request would fit (inf: never)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Buckets:
    """Token buckets of one rate, one per client key."""

    def __init__(self, rate: float, burst_seconds: float, unit: str, max_keys: int = 10_000):
        if rate <= 0 or burst_seconds <= 0:
            raise ValueError("a rate limit needs a positive rate and burst")
        self.rate = float(rate)
        self.capacity = max(1.0, rate * burst_seconds)
        self.unit = unit
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (level, at)

    def take(self, key: str, cost: float, now: float) -> None:
        """Spend ``cost`` from ``key``'s bucket, or raise :class:`Limited` (nothing spent)."""
        if cost > self.capacity:
            raise Limited(
                f"{cost:g} {self.unit} in one request is more than this client may send at once "
                f"({self.capacity:g}, {self.rate:g} per second): send smaller requests",
                math.inf,
            )
        level, at = self._state.pop(key, (self.capacity, now))
        level = min(self.capacity, level + (now - at) * self.rate)
        if level < cost:
            self._state[key] = (level, now)
            wait = (cost - level) / self.rate
            raise Limited(
                f"rate limit: at most {self.rate:g} {self.unit} per second for this client "
                f"(bursts of {self.capacity:g}); retry in {wait:.2f} s",
                wait,
            )
        self._state[key] = (level - cost, now)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)


def client_key(token: bytes, address: str | None) -> str:
    """A bucket's key: a digest of the bearer token (never the token itself), else the
    client's address."""
    if token:
        return "token:" + hashlib.sha256(token).hexdigest()[:16]
    return f"addr:{address or 'unknown'}"


def retry_after_header(seconds: float) -> tuple[bytes, bytes] | None:
    """``Retry-After`` in whole seconds, or None when retrying cannot help."""
    if not math.isfinite(seconds):
        return None
    return (b"retry-after", str(max(1, math.ceil(seconds))).encode())

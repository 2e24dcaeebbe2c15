"""Background HTTP traffic against a server, counting answers and failures (redeploys and
canaries under load)."""

from __future__ import annotations

import http.client
import json
import threading
import time


class Traffic(threading.Thread):
    """Sends one-record /predict requests back to back; records versions and failures."""

    def __init__(self, address: str, record: dict, keep_alive: bool = True) -> None:
        super().__init__(daemon=True)
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.body = json.dumps(record)
        self.keep_alive = keep_alive
        self.versions: list[str] = []
        self.times: list[float] = []
        self.failures: list[str] = []
        self.failure_times: list[float] = []  # time.monotonic() of each failure
        self._halt = threading.Event()

    def run(self) -> None:
        conn = None
        while not self._halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("POST", "/predict", self.body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    self.failures.append(f"{r.status}: {data[:200]!r}")
                    self.failure_times.append(time.monotonic())
                else:
                    self.versions.append(json.loads(data)["model_version"])
                    self.times.append(time.monotonic())
                if not self.keep_alive:
                    conn.close()
                    conn = None
            except Exception as err:  # noqa: BLE001 - every failure counts
                self.failures.append(f"{type(err).__name__}: {err}")
                self.failure_times.append(time.monotonic())
                conn = None
            time.sleep(0.002)

    def wait_for(self, version: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        n = len(self.versions)
        while time.monotonic() < deadline:
            if version in self.versions[n:]:
                return
            time.sleep(0.05)
        raise AssertionError(f"v{version} never served; last: {self.versions[-3:]}")

    def stop(self) -> None:
        self._halt.set()
        self.join(15)

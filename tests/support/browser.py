"""A real headless Chromium, driven through chromedriver's W3C WebDriver protocol (plain HTTP
and JSON: no driver library), for tests that look at a page as a user's browser shows it.

:func:`find_chromium` says where the browser and its driver are, installing Debian's packages
(``scripts/install-chromium.sh``) when they are missing and this user may; :class:`Browser` is
one session with a fixed window size: open a page, wait for a text, ask where it is drawn, save
a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install-chromium.sh"


@dataclass(frozen=True)
class Chromium:
    browser: str
    driver: str


def _which() -> Chromium | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return Chromium(browser, driver) if browser and driver else None


def find_chromium() -> tuple[Chromium | None, str]:
    """The browser and its driver, installed first when missing and this user may (root, or
    sudo without a password); else None and why."""
    found = _which()
    if found:
        return found, ""
    can = os.geteuid() == 0 or (
        shutil.which("sudo")
        and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    )
    if not can:
        return None, (
            "Chromium and chromedriver are not installed and this user cannot install them: run "
            f"`sudo bash {INSTALL.relative_to(ROOT)}` (apt-get install chromium chromium-driver)"
        )
    cmd = ["bash", str(INSTALL)] if os.geteuid() == 0 else ["sudo", "-n", "bash", str(INSTALL)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-300:]
        return None, f"{INSTALL.relative_to(ROOT)} failed: {tail}"
    found = _which()
    return found, "" if found else "Chromium installed, but chromium/chromedriver not on PATH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One headless session of ``width`` x ``height`` CSS pixels."""

    def __init__(self, base: str, session: str) -> None:
        self.base, self.session = base, session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base}/session/{self.session}{path}" if self.session else self.base + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as err:
            raise WebDriverError(f"{method} {path}: {err.read()[:500]!r}") from None

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def set_cookie(self, name: str, value: str) -> None:
        """A cookie for the origin of the page open now (open one of its pages first)."""
        self._call("POST", "/cookie", {"cookie": {"name": name, "value": value, "path": "/"}})

    def page_has(self, text: str, timeout: float) -> bool:
        """Whether the page's text shows ``text`` within ``timeout`` seconds."""
        script = "return !!document.body && document.body.innerText.includes(arguments[0]);"
        return bool(self.wait_for(script, timeout, text))

    def run(self, script: str, *args: Any) -> Any:
        """``script`` (a function body) run in the page; its return value."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, timeout: float, *args: Any) -> Any:
        """Run ``script`` until it returns something truthy; that value, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.run(script, *args)
            if value:
                return value
            time.sleep(0.25)
        return None

    def frame_text(self, css: str) -> str | None:
        """The text of the page in the first frame matching ``css`` (a sandboxed frame too:
        the driver enters it as a user's browser renders it); None when there is none yet."""
        try:
            frame = self._call("POST", "/element", {"using": "css selector", "value": css})
        except WebDriverError:
            return None
        self._call("POST", "/frame", {"id": frame})
        try:
            return str(self.run("return document.body ? document.body.innerText : '';"))
        finally:
            self._call("POST", "/frame/parent", {})

    def screenshot(self, path: Path) -> Path:
        """The viewport as PNG (what a user sees without scrolling)."""
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path


@contextmanager
def browser(
    chromium: Chromium, log: Path, width: int = 1280, height: int = 800
) -> Iterator[Browser]:
    """chromedriver on a free port and one headless Chromium session; both stopped after."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [chromium.driver, f"--port={port}"], stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        driver = Browser(base, "")
        deadline = time.monotonic() + 20
        while True:
            try:
                if driver._call("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError, WebDriverError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise WebDriverError(f"chromedriver did not start: {log.read_text()[-500:]}")
            time.sleep(0.2)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"]  # fmt: skip
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.browser, "args": args},
        }}}  # fmt: skip
        started = driver._call("POST", "/session", caps)
        session = Browser(base, started["sessionId"])
        # --window-size is the window's outer size: the page gets exactly this viewport
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        session._call(
            "POST", "/goog/cdp/execute",
            {"cmd": "Emulation.setDeviceMetricsOverride", "params": metrics},
        )  # fmt: skip
        try:
            yield session
        finally:
            try:
                session._call("DELETE", "")
            except (WebDriverError, urllib.error.URLError):
                pass
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

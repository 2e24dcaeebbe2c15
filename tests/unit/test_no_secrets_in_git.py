"""No secret in what git holds: the tracked files, and the untracked ones git would add (not
ignored), are scanned for private keys, known token formats, credentials inside URLs and
high-entropy values assigned to PASSWORD / TOKEN / SECRET / KEY settings. The stack's secrets
live in .env, which `make stack` generates and git must ignore."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 1_000_000

PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
TOKEN_FORMATS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
}
# NAME = value, NAME: value, name="value", --password value (the value up to a delimiter)
ASSIGNMENT = re.compile(
    r"(?i)([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|fernet[_-]?key"
    r"|access[_-]?key|private[_-]?key)[A-Za-z0-9_]*)[\"']?\s*(?:[:=]|\s)\s*[\"']?"
    r"([^\s\"'`,;()\[\]{}<>]+)"
)
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"']+:([^\s@/\"']+)@")
# what documentation writes where a URL's password goes (*** is what mask_url shows)
PLACEHOLDERS = {"password", "passwd", "pass", "pw", "secret", "changeme", "xxx", "...", "****",
                "***"}  # fmt: skip


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _looks_secret(value: str) -> bool:
    """A literal that looks generated: long, letters and digits mixed, high entropy. References
    (${VAR}, $VAR, %(x)s), placeholders (<...>, ...) and names of things are not."""
    if value.startswith(("$", "%", "<", "{")) or "..." in value:
        return False
    if len(value) < 16 or _entropy(value) < 3.5:
        return False
    return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))


def find_secrets(text: str) -> list[str]:
    """What in ``text`` looks like a secret, one description per finding."""
    found = []
    for m in PRIVATE_KEY.finditer(text):
        found.append(f"private key: {m.group(0)}")
    for what, pattern in TOKEN_FORMATS.items():
        found += [f"{what}: {m.group(0)[:8]}..." for m in pattern.finditer(text)]
    for m in URL_CREDENTIALS.finditer(text):
        password = m.group(1)
        if not password.startswith(("$", "{", "<")) and password.lower() not in PLACEHOLDERS:
            found.append(f"password in a URL: ...:{password[:3]}...@")
    for m in ASSIGNMENT.finditer(text):
        if _looks_secret(m.group(2)):
            found.append(f"{m.group(1)} = {m.group(2)[:4]}... (entropy {_entropy(m.group(2)):.1f})")
    return found


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def files() -> list[Path]:
    """Tracked files, plus the untracked ones `git add -A` would take."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    out = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    return [ROOT / p for p in sorted(set(out.split("\0"))) if p and (ROOT / p).is_file()]


def test_no_secret_in_the_files_git_holds(files: list[Path]) -> None:
    findings = []
    for path in files:
        if path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        for line_no, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            findings += [f"{path.relative_to(ROOT)}:{line_no}: {f}" for f in find_secrets(line)]
    assert findings == [], "secrets in files git tracks:\n" + "\n".join(findings)


def test_env_and_wheelhouse_are_ignored_and_the_example_is_not() -> None:
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    for path in (".env", ".wheelhouse/x.whl"):
        assert _git("check-ignore", "-q", path).returncode == 0, f"{path} is not git-ignored"
    assert _git("check-ignore", "-q", ".env.example").returncode == 1
    assert (ROOT / ".env.example").is_file()


def _fake_key(kind: str) -> str:  # built here, so this file holds no key-shaped text
    return "-----BEGIN " + kind + "PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END"


@pytest.mark.parametrize(
    "text",
    [
        _fake_key("RSA "),
        _fake_key("OPENSSH "),
        _fake_key(""),
        "POSTGRES_PASSWORD=" + "q7Rv2" + "XkP9mZt4Lw8Nc3Hb",
        'token = "' + "c0a8f3e2" + "9b7d4e1f6a5c8b2d" + '"',
        "AIRFLOW__CORE__FERNET_KEY: " + "k3Jx9Vq2Lm8" + "Pz5Tn1Rc7Wd4Hf6Ys0Bg=",
        "--password " + "Zx81Qw" + "Er7TyUi3Op0As",
        "postgresql://retrain:" + "hunter" + "2@postgres:5432/db",
        "AKIA" + "ABCDEFGHIJKLMNOP",
    ],
)
def test_the_scan_finds_secrets(text: str) -> None:
    assert find_secrets(text), text


@pytest.mark.parametrize(
    "text",
    [
        "POSTGRES_PASSWORD=",
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}",
        "redis://:${REDIS_PASSWORD}@redis:6379/0",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: /opt/airflow/passwords.json",
        "token = secrets.token_urlsafe(32)",
        'RETRAIN_SERVE_TOKEN = os.environ.get("RETRAIN_SERVE_TOKEN")',
        "Authorization: Bearer <RETRAIN_SERVE_TOKEN>",
        "MLFLOW_TRACKING_PASSWORD=...",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
        "AIRFLOW_CONN_SMTP_DEFAULT='smtp://user:password@smtp.example.com:587'",
    ],
)
def test_the_scan_ignores_references_and_names(text: str) -> None:
    assert find_secrets(text) == [], text

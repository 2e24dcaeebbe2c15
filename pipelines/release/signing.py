"""Sign what the gate passed: the model signing key, and the signatures on registered versions.

A version gets a signature (:mod:`pipelines.serve.trust`: a manifest of its model, version, run,
gate verdict and every file's sha256, signed with Ed25519) in two ways only:

* ``register``, for a version the gate passed (:func:`sign_registration`): the digests signed
  are the ones the gate recorded when it loaded and judged the challenger, and the registered
  files must still have them;
* an audited override (:func:`sign_override`: ``retrain promote VERSION``, ``retrain sign
  VERSION``): a human lets out a version the gate did not pass, or re-signs one after a key
  rotation; who and why go into the manifest, the version's tags and the registry history.

The private key lives in the workspace (``params.paths.signing_key``, or $RETRAIN_SIGNING_KEY),
outside git, mode 600; it is made on first use. Its public half (``.pub`` beside it) is all a
load needs. Never imported by the serving image.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Params
from pipelines.serve import trust


class SigningError(RuntimeError):
    """A version that cannot be signed; the message says which and why."""


# --------------------------------------------------------------------------- the key
def private_key(params: Params) -> Any:
    """The workspace's Ed25519 signing key, made (mode 600, public half beside it) on first use.
    Two processes making it at once: one wins (a whole file linked into place), the other
    reads the winner's key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = params.paths.signing_key
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and never over an existing key
        except FileExistsError:
            pass  # made meanwhile by another process: use that one
        finally:
            tmp.unlink()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningError(f"{path}: the signing key is readable by others (mode {mode:o}); "
                           f"chmod 600 it")  # fmt: skip
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key")
    pub = params.paths.signing_public_key
    pem_pub = public_pem(loaded.public_key())
    if not pub.is_file() or pub.read_bytes() != pem_pub:
        tmp = pub.with_name(pub.name + ".tmp")
        tmp.write_bytes(pem_pub)
        tmp.chmod(0o644)
        tmp.replace(pub)
    return loaded


def public_pem(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# --------------------------------------------------------------------------- signing
def sign(params: Params, manifest: trust.Manifest) -> tuple[str, str]:
    """The manifest's canonical text and its signature (base64) with the workspace key."""
    key = private_key(params)
    manifest = dataclasses.replace(manifest, key_id=trust.key_id(key.public_key()))
    text = manifest.canonical().decode()
    return text, base64.b64encode(key.sign(text.encode())).decode()


def registered_digests(params: Params, version: str) -> dict[str, str]:
    """The sha256 of every file of a registered version, as a load would download it."""
    tmp = Path(tempfile.mkdtemp(prefix="sign-"))
    try:
        name = params.mlflow.registered_model
        return trust.file_digests(
            Path(trust.download_model(params.tracking_uri, name, version, tmp))
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write(params: Params, version: str, manifest: trust.Manifest) -> trust.Manifest:
    from pipelines.edges import registry

    text, signature = sign(params, manifest)
    c = registry.client(params)
    name = params.mlflow.registered_model
    c.set_model_version_tag(name, version, trust.MANIFEST_TAG, text)
    c.set_model_version_tag(name, version, trust.SIGNATURE_TAG, signature)
    return trust.Manifest.parse(text)


def sign_registration(
    params: Params, version: str, run_id: str, judged: Mapping[str, str]
) -> trust.Manifest:
    """Sign a version the gate passed: ``judged`` are the digests of the files the gate loaded
    and judged (``evidence.json``); the registered version must have exactly those files."""
    from pipelines.edges import registry

    if not judged or trust.MODEL_FILE not in judged:
        raise SigningError(f"v{version}: the gate recorded no digests of the model it judged; "
                           "nothing to sign")  # fmt: skip
    found = registered_digests(params, version)
    if found != dict(judged):
        differ = sorted(k for k in found.keys() | judged.keys() if found.get(k) != judged.get(k))
        raise SigningError(f"v{version}: the registered files differ from the ones the gate "
                           f"judged ({', '.join(differ)}); not signed")  # fmt: skip
    manifest = trust.Manifest(
        model=params.mlflow.registered_model, version=str(version), run_id=run_id,
        verdict="pass", files=dict(found), signed_at=_now(), signed_by=registry.actor(),
        reason="the gate passed it",
    )  # fmt: skip
    return _write(params, str(version), manifest)


def verify_version(params: Params, version: str) -> trust.Manifest:
    """Check a registered version's signature and files (nothing is deserialised); its
    manifest, or :class:`~pipelines.serve.trust.UntrustedModel` saying why not. What a command
    checks before it moves an alias to a version (rollback, a canary)."""
    with verified_files(params, version) as (_, manifest):
        return manifest


@contextmanager
def verified_files(params: Params, version: str) -> Iterator[tuple[Path, trust.Manifest]]:
    """A registered version's files, downloaded into a temporary folder (removed afterwards)
    once its signature and digests verify, and its manifest; else
    :class:`~pipelines.serve.trust.UntrustedModel` saying why not."""
    from pipelines.edges import registry

    tmp = Path(tempfile.mkdtemp(prefix="verify-"))
    try:
        folder, _, manifest = trust.verify_registered(
            registry.client(params), params.tracking_uri, params.mlflow.registered_model,
            str(version), params.paths.signing_public_key, tmp,
        )  # fmt: skip
        yield folder, manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sign_override(params: Params, version: str, reason: str, by: str | None = None) -> str:
    """An audited override: sign ``version`` as it is in the registry now, by a human's word.

    A version whose signature already verifies is left as it is. A version signed (by this key)
    for other files than it has now was tampered with: refused, whoever asks. Otherwise (never
    signed: the gate rejected it, or it predates signing; or signed by a retired key) it is
    signed with verdict ``override``, the human (``by``, default the actor) and ``reason``,
    and the act is recorded on the version (``override.*`` tags) and in the registry history.
    Returns what was done, in one line."""
    from pipelines.edges import registry

    name = params.mlflow.registered_model
    c = registry.client(params)
    mv = c.get_model_version(name, str(version))  # raises if it does not exist
    try:
        verify_version(params, version)
        return f"{name} v{version}: signature verifies, nothing to sign"
    except trust.UntrustedModel as err:
        if "files differ" in str(err):
            raise SigningError(f"{err}; an override does not sign tampered files") from None
    who = by or registry.actor()
    manifest = trust.Manifest(
        model=name, version=str(version), run_id=mv.run_id or "", verdict="override",
        files=registered_digests(params, str(version)), signed_at=_now(), signed_by=who,
        reason=reason[:500], extra={"gate": dict(mv.tags).get("gate", "")},
    )  # fmt: skip
    _write(params, str(version), manifest)
    registry.record_event(params, "signature", str(version), f"signed by hand: {reason}", by=who)
    return f"{name} v{version}: signed as an override by {who}: {reason}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

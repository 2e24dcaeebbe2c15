"""Only what the gate passed is ever loaded: the model file format, the types it may contain, the
signed manifest, and the check every load makes before it deserialises a byte.

A registered version is trusted when its manifest (model, version, run, gate verdict, the sha256
of every file of its MLflow model folder) carries an Ed25519 signature that verifies with the
project's public key, and the files on disk have those digests. The manifest and signature
travel as version tags (:data:`MANIFEST_TAG`, :data:`SIGNATURE_TAG`) or, in a serving image, as
:data:`SIGNATURE_FILE` beside the model; the private key never leaves the workspace that signs
(:mod:`pipelines.release.signing`). A registry writer can change tags and files, but cannot make
a signature that verifies.

The rules are the project's, never the artifact's: a model is one skops file,
:data:`MODEL_FILE`, and skops may build only :data:`TRUSTED_TYPES` besides its own defaults.
``MLmodel``'s ``serialization_format`` and ``skops_trusted_types`` are never read, so a version
declaring pickle, cloudpickle or ``subprocess.getoutput`` as trusted runs nothing.

Standard library + ``cryptography`` + skops (the serving image carries all three); MLflow only
when a registered version is downloaded (never in the image).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.files import sha256_of

MODEL_FILE = "model.skops"  # the only model file format loaded: skops, never pickle
# Types outside skops' defaults that the project's models need, reviewed once and written here:
# the union over every classifier and encoding `train` can build (pipelines.config.CLASSIFIERS).
# `train` refuses a model needing anything else (pipelines.edges.tracking.trusted_types).
TRUSTED_TYPES: tuple[str, ...] = (
    "functools.partial",  # ordinal encoding: a partial of check_array (itself listed)
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
)
MANIFEST_TAG = "signature.manifest"  # version tag: the signed manifest (canonical JSON)
SIGNATURE_TAG = "signature.value"  # version tag: its Ed25519 signature (base64)
SIGNATURE_FILE = "signature.json"  # in a baked model folder: {"manifest": ..., "signature": ...}
PUBLIC_KEY_FILE = "signing.pub"  # in a baked model folder: the public key the image trusts
# MLflow writes this into every download of models:/NAME/VERSION (name and version): not the model
NOT_MODEL_FILES = frozenset({"registered_model_meta"})
VERDICTS = ("pass", "override")  # what a signature may say; a gate-rejected version has none


class UntrustedModel(RuntimeError):
    """A model version that must not be loaded; the message is one line naming it and why."""


@dataclass(frozen=True)
class Manifest:
    """What a signature vouches for: one version of one model, its files and who let it out."""

    model: str
    version: str
    run_id: str
    verdict: str  # "pass" (the gate) or "override" (`retrain promote` / `retrain sign`)
    files: dict[str, str]  # path inside the model folder -> sha256
    signed_at: str
    signed_by: str
    reason: str = ""
    key_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """The bytes signed: sorted-key JSON, no whitespace."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, text: str) -> Manifest:
        d = json.loads(text)
        if not isinstance(d, dict) or not isinstance(d.get("files"), dict):
            raise ValueError("not a manifest")
        return cls(**d)


def file_digests(folder: Path, ignore: frozenset[str] = frozenset()) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative POSIX paths), MLflow's own
    ``registered_model_meta``, the baked signature files and ``ignore`` aside."""
    folder = Path(folder)
    skip = NOT_MODEL_FILES | {SIGNATURE_FILE, PUBLIC_KEY_FILE} | ignore
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            raise UntrustedModel(f"{folder}: {rel} is a symlink")
        if p.is_file() and rel not in skip:
            out[rel] = sha256_of(p)
    return out


def key_id(public_key: Any) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of sha256 of its raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def read_public_key(path: Path) -> Any:
    """The Ed25519 public key in ``path`` (PEM); an :class:`UntrustedModel` naming the path if
    there is none, since nothing can be verified without it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as err:
        raise UntrustedModel(
            f"no model signing public key at {path} ({type(err).__name__}): nothing is loaded "
            "unverified (the key is made when the first version is signed; see "
            "docs/operations.md#model-signing-keys)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise UntrustedModel(f"{path}: not an Ed25519 public key")
    return key


def verify_folder(
    folder: Path,
    manifest_text: str | None,
    signature_b64: str | None,
    public_key: Any,
    model: str,
    version: str,
    run_id: str | None = None,
    gate: str | None = None,
    ignore: frozenset[str] = frozenset(),
) -> Manifest:
    """Check ``folder`` against its signed manifest before anything in it is deserialised.

    Refused (:class:`UntrustedModel`, one line: ``<model> v<version> refused: <why>``): no
    signature (``gate`` the version's gate tag, to say the gate rejected it), a signature that
    does not verify with ``public_key``, a manifest for another model, version or run, a verdict
    other than pass/override, a file missing, added or changed (``ignore``: files the project
    itself added beside the model, e.g. an image's serving spec).
    """
    from cryptography.exceptions import InvalidSignature

    def refuse(why: str) -> UntrustedModel:
        return UntrustedModel(f"{model} v{version} refused: {why}")

    if not manifest_text or not signature_b64:
        if gate == "fail":
            raise refuse("the gate rejected it, so it was never signed")
        raise refuse(
            "not signed (only versions the gate passed, or an audited `retrain promote`, are)"
        )
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, manifest_text.encode())
    except (InvalidSignature, ValueError):
        raise refuse(f"bad signature (not made by key {key_id(public_key)})") from None
    try:
        manifest = Manifest.parse(manifest_text)
    except (TypeError, ValueError) as err:
        raise refuse(f"unreadable manifest: {err}") from None
    if (manifest.model, manifest.version) != (model, str(version)):
        raise refuse(f"its signature is for {manifest.model} v{manifest.version}")
    if run_id is not None and manifest.run_id != run_id:
        raise refuse(f"its signature is for run {manifest.run_id}, the version's run is {run_id}")
    if manifest.verdict not in VERDICTS:
        raise refuse(f"signed verdict {manifest.verdict!r} lets nothing out")
    found = file_digests(folder, ignore)
    want = manifest.files
    if MODEL_FILE not in want:
        raise refuse(f"its manifest lists no {MODEL_FILE}")
    changed = sorted(f for f in want.keys() & found.keys() if want[f] != found[f])
    missing, added = sorted(want.keys() - found.keys()), sorted(found.keys() - want.keys())
    if changed or missing or added:
        parts = [f"{k}: {', '.join(v)}" for k, v in
                 (("changed", changed), ("missing", missing), ("added", added)) if v]  # fmt: skip
        raise refuse(f"files differ from what was signed ({'; '.join(parts)})")
    return manifest


def download_model(tracking_uri: str, name: str, version: str, dst: Path) -> str:
    """Copy a registered version's MLflow model folder to ``dst``; return the folder. Nothing in
    it is trusted until :func:`verify_folder` says so."""
    import mlflow.artifacts

    return str(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=str(dst),
            tracking_uri=tracking_uri,
        )
    )


def verify_registered(
    client: Any, tracking_uri: str, name: str, version: str, public_key: Path, dst: Path
) -> tuple[Path, Any, Manifest]:
    """Download ``name`` v``version`` into ``dst`` and verify it (signature, digests, run);
    its folder, registry version and manifest. Deserialises nothing."""
    mv = client.get_model_version(name, str(version))
    tags = dict(mv.tags)
    key = read_public_key(public_key)
    local = Path(download_model(tracking_uri, name, str(version), dst))
    manifest_text, signature = signature_of(tags)
    manifest = verify_folder(
        local, manifest_text, signature, key, name, str(version),
        run_id=mv.run_id or "", gate=tags.get("gate"),
    )  # fmt: skip
    return local, mv, manifest


def signature_of(tags: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The manifest and signature a version's tags carry (None where absent)."""
    return tags.get(MANIFEST_TAG), tags.get(SIGNATURE_TAG)


def deserialise(folder: Path) -> Any:
    """The fitted estimator in ``folder``: :data:`MODEL_FILE` read by skops with
    :data:`TRUSTED_TYPES` only. Call it on a folder :func:`verify_folder` accepted (or on the
    challenger the gate is judging); skops refuses any other type, pickle is never used."""
    import skops.io

    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise UntrustedModel(f"{folder}: no {MODEL_FILE} (the only model format loaded)")
    return skops.io.load(path, trusted=list(TRUSTED_TYPES))


def baked_signature(folder: Path) -> tuple[str | None, str | None]:
    """The manifest and signature baked into an image's model folder (None where absent)."""
    p = Path(folder) / SIGNATURE_FILE
    if not p.is_file():
        return None, None
    d = json.loads(p.read_text())
    return d.get("manifest"), d.get("signature")


def bake_signature(folder: Path, manifest_text: str, signature_b64: str, public_pem: bytes) -> None:
    """Write the signature and the public key into a model folder an image carries."""
    sig = {"manifest": manifest_text, "signature": signature_b64}
    (Path(folder) / SIGNATURE_FILE).write_text(json.dumps(sig))
    (Path(folder) / PUBLIC_KEY_FILE).write_bytes(public_pem)

"""Serving models: what the server needs to know, where models come from, and how they swap.

Every registered version is loaded by :func:`load_registered` (the registry source, deploy's
smoke test and rollback, the canary and shadow holder, the gate's champion, ``reproduce``) or,
in an image, by :class:`DirectorySource`: both verify the version's signature and file digests
(:mod:`pipelines.serve.trust`) before a byte is deserialised, and read the model in the one
format the project fixes. The only unsigned load is the gate's challenger
(:func:`load_challenger`), judged before anything can sign it, in that same fixed format.

Deliberately free of ``pipelines.config`` (pydantic) and MLflow at import time: the serving image
carries only the serving runtime (see :mod:`pipelines.serve`) and the packages of
``containers.RUNTIME_ROOTS`` (numpy/scikit-learn/pandas, skops, cryptography, orjson, uvicorn,
prometheus_client). The local server adds the registry source, which imports MLflow when used.
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.serve import trust
from pipelines.serve.fastpath import CompiledScorer, FieldSpec, check_signature

log = logging.getLogger("pipelines.serve")

SPEC_FILE = "serving.json"  # in a baked model folder: the ServingSpec + model identity
SMOKE_FILE = "smoke.json"  # in a baked model folder: the fixed smoke sample (records)
SMOKE_TOL = 1e-6


@dataclass(frozen=True)
class ServingSpec:
    """Dataset facts the server needs (from params.dataset / params.evaluate), as plain data."""

    model_name: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    positive_label: str
    negative_label: str
    threshold: float = 0.5
    alias: str = "champion"

    @property
    def fields(self) -> FieldSpec:
        return FieldSpec(tuple(self.numeric), tuple(self.categorical))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServingSpec:
        d = dict(d)
        d["numeric"], d["categorical"] = tuple(d["numeric"]), tuple(d["categorical"])
        return cls(**d)

    @classmethod
    def from_params(cls, params: Any) -> ServingSpec:
        ds = params.dataset
        return cls(
            model_name=params.mlflow.registered_model,
            numeric=tuple(ds.features.numeric),
            categorical=tuple(ds.features.categorical),
            positive_label=ds.positive_label,
            negative_label=ds.negative_label or f"not {ds.positive_label}",
            threshold=float(params.evaluate.decision_threshold),
        )


@dataclass
class LoadedModel:
    """One model version, compiled and ready; swapped in as a whole."""

    version: str
    scorer: CompiledScorer
    run_id: str = ""
    data_version: dict[str, str] = field(default_factory=dict)
    source: str = ""
    loaded_at: float = field(default_factory=time.time)
    tags: dict[str, str] = field(default_factory=dict)  # the registry version's tags
    digests: dict[str, str] = field(default_factory=dict)  # sha256 of the model folder's files

    def info(self) -> dict[str, Any]:
        return {
            "model_version": self.version,
            "run_id": self.run_id,
            "data_version": self.data_version,
            "scorer": self.scorer.mode,
            "scorer_walk": self.scorer.walker,
            "source": self.source,
        }


# --------------------------------------------------------------------------- MLflow model folders
def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((model_dir / "MLmodel").read_text()) or {}


def load_sklearn(model_dir: Path) -> Any:
    """The fitted estimator of an MLflow sklearn model folder: its skops file, with the trusted
    types the project fixes (:func:`pipelines.serve.trust.deserialise`). The format and trusted
    types ``MLmodel`` declares are never read."""
    return trust.deserialise(model_dir)


def signature_inputs(model_dir: Path) -> list[dict[str, Any]] | None:
    sig = read_mlmodel(model_dir).get("signature") or {}
    raw = sig.get("inputs")
    return json.loads(raw) if isinstance(raw, str) else raw


def input_example(model_dir: Path) -> Any:
    """The logged input example as a DataFrame (pandas split orient), or None."""
    p = model_dir / "input_example.json"
    if not p.is_file():
        return None
    import pandas as pd

    d = json.loads(p.read_text())
    if isinstance(d, dict) and "columns" in d and "data" in d:
        return pd.DataFrame(d["data"], columns=d["columns"])
    return None


def load_model_dir(
    model_dir: Path,
    spec: ServingSpec,
    version: str,
    run_id: str = "",
    data_version: dict[str, str] | None = None,
    source: str = "",
) -> LoadedModel:
    """Load and compile an MLflow model folder; refuse one whose signature disagrees."""
    check_signature(spec.fields, signature_inputs(model_dir))
    model = load_sklearn(model_dir)
    scorer = CompiledScorer(model, spec.fields, probe=input_example(model_dir))
    scorer.explainer()  # built with the model, not by the first request that asks
    return LoadedModel(version, scorer, run_id, data_version or {}, source or str(model_dir))


# --------------------------------------------------------------------------- smoke check
def smoke_check(loaded: LoadedModel, records: list[dict[str, Any]] | None) -> tuple[bool, str]:
    """Served (compiled) predictions on the fixed sample == the model's own predict_proba."""
    if not records:
        return True, "no smoke sample"
    sc = loaded.scorer
    got = sc.predict_records(records)
    frame = sc._frame(*_split(records, sc.spec))
    want = np.asarray(sc.model.predict_proba(frame)[:, 1], dtype=np.float64)
    diff = float(np.max(np.abs(got - want)))
    ok = diff <= SMOKE_TOL
    return ok, f"v{loaded.version}: {len(records)} smoke rows, max |served - offline| = {diff:.2e}"


def _split(records: list[dict[str, Any]], spec: FieldSpec) -> tuple[np.ndarray, list[list[Any]]]:
    num = np.array(
        [[np.nan if r[c] is None else float(r[c]) for c in spec.numeric] for r in records],
        dtype=np.float64,
    ).reshape(len(records), len(spec.numeric))
    cats = [[np.nan if r[c] is None else r[c] for c in spec.categorical] for r in records]
    return num, cats


# --------------------------------------------------------------------------- sources
class DirectorySource:
    """A model baked into the image: one folder, one version, never changes. Its signature
    and the public key it is checked with were baked beside it by the deploy that verified it."""

    def __init__(self, model_dir: Path, public_key: Path | None = None) -> None:
        self.model_dir = Path(model_dir)
        meta = json.loads((self.model_dir / SPEC_FILE).read_text())
        self.spec = ServingSpec.from_dict(meta["spec"])
        self.meta = meta
        self.public_key = Path(public_key or self.model_dir / trust.PUBLIC_KEY_FILE)
        smoke = self.model_dir / SMOKE_FILE
        self.smoke = json.loads(smoke.read_text()) if smoke.is_file() else None

    def resolve(self) -> str:
        return str(self.meta["model_version"])

    def load(self, version: str) -> LoadedModel:
        manifest, signature = trust.baked_signature(self.model_dir)
        trust.verify_folder(
            self.model_dir, manifest, signature, trust.read_public_key(self.public_key),
            self.spec.model_name, version, ignore=frozenset({SPEC_FILE, SMOKE_FILE}),
        )  # fmt: skip
        return load_model_dir(
            self.model_dir,
            self.spec,
            version,
            self.meta.get("run_id", ""),
            self.meta.get("data_version", {}),
            source=f"models:/{self.spec.model_name}/{version} (baked)",
        )


class RegistrySource:
    """The registry alias (``models:/NAME@champion``), resolved again on every poll; a version
    is loaded only once its signature verifies with ``public_key`` (:func:`load_registered`)."""

    def __init__(self, tracking_uri: str, spec: ServingSpec, public_key: Path) -> None:
        self.tracking_uri = tracking_uri
        self.spec = spec
        self.public_key = Path(public_key)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = registry_client(self.tracking_uri)
        return self._client

    def resolve(self) -> str | None:
        return alias_version(self.client, self.spec.model_name, self.spec.alias)

    def load(self, version: str) -> LoadedModel:
        return load_registered(
            self.tracking_uri, self.spec, str(version), self.public_key, client=self.client
        )


def registry_client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def alias_version(client: Any, name: str, alias: str) -> str | None:
    """The version ``alias`` names, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_registered(
    tracking_uri: str,
    spec: ServingSpec,
    version: str,
    public_key: Path,
    client: Any = None,
) -> LoadedModel:
    """THE load of a registered version: download, verify its signature and every file's
    digest with ``public_key`` (an :class:`~pipelines.serve.trust.UntrustedModel` otherwise),
    then read it in the project's fixed format and compile it. Serving, the canary and shadow,
    deploy's smoke test and rollback, the gate's champion and ``reproduce`` all come here."""
    c = client or registry_client(tracking_uri)
    name = spec.model_name
    tmp = Path(tempfile.mkdtemp(prefix=f"serve-{name}-v{version}-"))
    try:
        local, mv, manifest = trust.verify_registered(
            c, tracking_uri, name, version, public_key, tmp
        )
        tags = dict(mv.tags)
        loaded = load_model_dir(
            local, spec, str(version), mv.run_id or "", data_versions(tags),
            source=f"models:/{name}/{version}",
        )  # fmt: skip
        loaded.tags, loaded.digests = tags, dict(manifest.files)
        return loaded
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_challenger(tracking_uri: str, model_uri: str, spec: ServingSpec) -> LoadedModel:
    """The gate's challenger (``runs:/...`` or ``models:/m-...``), not registered yet and so not
    signed: read in the same fixed format, compiled as serving compiles it (the gate judges what
    would serve), with the digests of its files, which ``register`` signs if the gate passes."""
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix="score-challenger-"))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=str(tmp), tracking_uri=tracking_uri
            )
        )
        digests = trust.file_digests(local)
        loaded = load_model_dir(local, spec, "challenger", source=model_uri)
        loaded.digests = digests
        return loaded
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def data_versions(tags: dict[str, str]) -> dict[str, str]:
    """The data versions a model version was trained/judged on, from its lineage tags."""
    return {k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("data_version.")}


# --------------------------------------------------------------------------- holder + watcher
class ModelHolder:
    """The model being served. Readers take ``current`` once per batch; a swap is one
    reference assignment, so every request is scored by exactly one whole model."""

    def __init__(
        self, source: Any, smoke: list[dict[str, Any]] | None = None, optional: bool = False
    ) -> None:
        self.source = source
        self.smoke = smoke
        self.optional = optional  # a canary: dropped when its alias goes away
        self.current: LoadedModel | None = None
        self.rejected: dict[str, str] = {}  # version -> why it was not swapped in
        self.last_error = ""
        self.reloads = {"ok": 0, "failed": 0}
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.on_swap: Callable[[LoadedModel], None] | None = None

    def refresh(self) -> bool:
        """Resolve the source; load, check and swap in a new version. True if swapped."""
        with self._lock:
            try:
                version = self.source.resolve()
            except Exception as err:  # noqa: BLE001 - a registry hiccup: keep serving
                self.last_error = f"resolve: {type(err).__name__}: {err}"
                return False
            cur = self.current
            if version is None and self.optional and cur is not None:
                self.current = None  # the canary was promoted or aborted
                log.warning("canary v%s withdrawn", cur.version)
                return True
            if version is None or (cur is not None and cur.version == version):
                return False
            if version in self.rejected:
                return False
            loaded = self._cache.get(version)
            try:
                if loaded is None:
                    loaded = self.source.load(version)
                ok, detail = smoke_check(loaded, self.smoke)
            except trust.UntrustedModel as err:  # unsigned, tampered, gate-rejected: one line
                ok, detail = False, str(err)
            except Exception as err:  # noqa: BLE001 - a model that cannot be loaded is not served
                ok, detail = False, f"v{version}: cannot be loaded: {type(err).__name__}: {err}"
            if not ok:
                self.rejected[version] = detail
                self.reloads["failed"] += 1
                self.last_error = detail
                log.error("not swapping in v%s: %s", version, detail)
                return False
            assert loaded is not None
            self._cache[version] = loaded
            self._cache.move_to_end(version)
            while len(self._cache) > 3:
                self._cache.popitem(last=False)
            self.current = loaded  # the swap
            gc.freeze()  # the model's objects are long-lived: keep them out of GC passes
            self.reloads["ok"] += 1
            self.rejected.pop(version, None)
            log.warning(
                "serving v%s (%s%s, %s)",
                version,
                loaded.scorer.mode,
                f": {loaded.scorer.walker}" if loaded.scorer.walker else "",
                detail,
            )
            if self.on_swap:
                self.on_swap(loaded)
            return True

    def watch(self, interval: float, stop: threading.Event) -> threading.Thread:
        """Poll the source every ``interval`` seconds in a daemon thread."""

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.refresh()
                    # a rejected version is tried again only once the alias moved away and back
                    cur = self.source.resolve() if self.rejected else None
                    for v in list(self.rejected):
                        if v != cur:
                            self.rejected.pop(v, None)
                except Exception:  # noqa: BLE001 - the watcher must outlive any one poll
                    log.exception("model watcher poll failed")
                stop.wait(interval)

        t = threading.Thread(target=loop, name="model-watcher", daemon=True)
        t.start()
        return t

"""Only what the gate passed is ever loaded (issue 15, point 1).

An attacker with nothing but registry write access registers two versions whose load would run
code (a cloudpickle model whose unpickling writes a marker file; a skops file declaring
``subprocess.getoutput`` among its trusted types, which would call it), dresses them with the
tags of a passed version (a copied signature, a signature of their own key), and points every
alias at them. Every load path is run against them: serving's registry source (champion and
canary holders of the local app), deploy's smoke-test reference, rollback, the gate's champion
and challenger loads, ``reproduce``, a baked image folder. Each refuses with one line naming the
version and why, the model already serving keeps serving, and the marker never appears (at the
end, the same files loaded the way the code used to load them do write it: the payloads are
live). A tampered version (one byte changed after signing) and a gate-rejected one are refused;
an audited override signs a version with who and why, and then it loads.

A real MLflow registry (SQLite in a temporary folder), the session's prefit models: nothing is
trained here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from pipelines.cli import main as retrain
from pipelines.config import Params
from pipelines.edges import registry
from pipelines.release import deploy
from pipelines.release.signing import SigningError, sign_override
from pipelines.serve import trust
from pipelines.serve.app import local_app
from pipelines.serve.model import (
    SPEC_FILE,
    DirectorySource,
    ServingSpec,
    load_challenger,
    load_registered,
)
from tests.support.registry import make_params, register_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


class _Payload:
    """What a pickle can carry: unpickling it runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _skops_payload(marker: Path) -> bytes:
    """A skops file whose load calls ``subprocess.getoutput('touch <marker>')`` if that type is
    trusted (skops' reduce loader calls the named constructor with the stored arguments)."""

    def text(v: str, i: int) -> dict[str, Any]:
        return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                "content": json.dumps(v), "is_json": True, "__id__": i}  # fmt: skip

    args = {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [text(f"touch {marker}", 1)], "__id__": 2}  # fmt: skip
    keys = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": [], "__id__": 4}  # fmt: skip
    empty = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
             "content": {}, "__id__": 3, "key_types": keys}  # fmt: skip
    schema = {"__class__": "getoutput", "__module__": "subprocess", "__loader__": "LossNode",
              "__reduce__": {"args": args}, "content": empty, "__id__": 5, "protocol": 2,
              "_skops_version": "0.16.0"}  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
    return buf.getvalue()


def _mlmodel(sklearn_flavor: dict[str, Any]) -> str:
    pyfunc = {"loader_module": "mlflow.sklearn"}
    return yaml.safe_dump({"flavors": {"python_function": pyfunc, "sklearn": sklearn_flavor}})


@dataclass
class Registry:
    params: Params
    good: str  # signed by the gate: the champion
    pickle_v: str  # attacker: cloudpickle payload, v<good>'s signature copied onto it
    skops_v: str  # attacker: skops payload, signed with the attacker's own key
    rejected: str  # a real model the gate rejected: never signed
    tampered: str  # signed, then one byte of its model file changed
    marker: Path

    @property
    def attackers(self) -> tuple[str, str]:
        return (self.pickle_v, self.skops_v)


def _attacker_version(params: Params, files: dict[str, bytes], tags: dict[str, str]) -> str:
    """A version registered the way a registry writer can: artifacts of a run of their own."""
    import mlflow

    from pipelines.edges import tracking

    tracking.setup(params)
    folder = params.root / f"attacker-{len(os.listdir(params.root))}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="model")
    c = registry.client(params)
    name = params.mlflow.registered_model
    mv = c.create_model_version(
        name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
    )
    return str(mv.version)


def _artifact_dir(params: Params, version: str) -> Path:
    c = registry.client(params)
    uri = c.get_model_version_download_uri(params.mlflow.registered_model, version)
    return Path(urlparse(uri).path)


@pytest.fixture(scope="module")
def reg(tmp_path_factory, prefit, adult_reference, adult_current) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    root = tmp_path_factory.mktemp("trust")
    marker = root / "PWNED"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'ws' / 'mlflow.db'}")
        mp.delenv("RETRAIN_SIGNING_KEY", raising=False)
        mp.setenv(registry.ACTOR_ENV, "tests")
        params = make_params(root / "ws", "trust-test")
        ref = adult_reference.head(500)
        good = register_model(params, ref, promote=True, model=prefit["a"])
        adult_current.head(50).to_parquet(params.paths.window_eval)  # the smoke sample
        rejected = register_model(params, ref, promote=False, model=prefit["b"], sign=False)
        c = registry.client(params)
        name = params.mlflow.registered_model
        c.set_model_version_tag(name, rejected, "gate", "fail")
        tampered = register_model(params, adult_reference.head(400), promote=False,
                                  model=prefit["b"])  # fmt: skip
        skops_file = _artifact_dir(params, tampered) / trust.MODEL_FILE
        data = bytearray(skops_file.read_bytes())
        data[len(data) // 2] ^= 0x01  # one byte, after signing
        skops_file.write_bytes(bytes(data))

        good_tags = dict(c.get_model_version(name, good).tags)
        pickle_v = _attacker_version(
            params,
            {"model.pkl": pickle.dumps(_Payload(marker)),
             "MLmodel": _mlmodel({"pickled_model": "model.pkl",
                                  "serialization_format": "cloudpickle"}).encode()},
            {"gate": "pass", trust.MANIFEST_TAG: good_tags[trust.MANIFEST_TAG],
             trust.SIGNATURE_TAG: good_tags[trust.SIGNATURE_TAG]},
        )  # fmt: skip
        evil_key = Ed25519PrivateKey.generate()
        skops_files = {
            trust.MODEL_FILE: _skops_payload(marker),
            "MLmodel": _mlmodel({"pickled_model": trust.MODEL_FILE,
                                 "serialization_format": "skops",
                                 "skops_trusted_types": ["subprocess.getoutput"]}).encode(),
        }  # fmt: skip
        skops_v = str(int(pickle_v) + 1)
        forged = trust.Manifest(
            model=name, version=skops_v, run_id="", verdict="pass",
            files={k: hashlib.sha256(v).hexdigest() for k, v in skops_files.items()},
            signed_at="2026-01-01T00:00:00+00:00", signed_by="gate",
        )  # fmt: skip
        text = forged.canonical().decode()
        sig = base64.b64encode(evil_key.sign(text.encode())).decode()
        assert _attacker_version(
            params, skops_files,
            {"gate": "pass", trust.MANIFEST_TAG: text, trust.SIGNATURE_TAG: sig},
        ) == skops_v  # fmt: skip
        yield Registry(params, good, pickle_v, skops_v, rejected, tampered, marker)


def _pfile(params: Params) -> str:
    return str(params.root / "params.yaml")


def _point(params: Params, alias: str, version: str) -> None:
    registry.client(params).set_registered_model_alias(
        params.mlflow.registered_model, alias, version
    )


def _one_line_refusal(text: str, version: str) -> None:
    assert f"v{version} refused: " in text, text
    assert "\n" not in text.strip(), text


def test_every_load_path_refuses_the_attackers_versions_and_runs_nothing(reg, capsys):
    params, name = reg.params, reg.params.mlflow.registered_model
    spec = ServingSpec.from_params(params)
    key = params.paths.signing_public_key
    app = local_app(params, watch_interval=None, log=False)
    assert app.holder.refresh() and app.holder.current.version == reg.good
    why = {
        reg.pickle_v: f"its signature is for {name} v{reg.good}",
        reg.skops_v: "bad signature",
    }
    for evil in reg.attackers:
        # serving: the champion alias moves to it; the holder keeps serving the good version
        _point(params, "champion", evil)
        assert not app.holder.refresh()
        assert app.holder.current.version == reg.good
        _one_line_refusal(app.holder.rejected[evil], evil)
        assert why[evil] in app.holder.rejected[evil]
        # the canary / shadow holder: nothing goes out beside the champion
        _point(params, "canary", evil)
        app.canary.refresh()
        assert app.canary.current is None and evil in app.canary.rejected
        # deploy's smoke test reference, the gate's champion load, reproduce
        for load in (
            lambda v: deploy.reference_scorer(params, v),
            lambda v: load_registered(params.tracking_uri, spec, v, key),
        ):
            with pytest.raises(trust.UntrustedModel) as err:
                load(evil)
            _one_line_refusal(str(err.value), evil)
        assert retrain(["reproduce", evil, "--params", _pfile(params)]) == 1
        _one_line_refusal(capsys.readouterr().err, evil)
        # rollback: refused before the alias moves, with and without the redeploy
        _point(params, "champion", reg.good)
        _point(params, "previous", evil)
        with pytest.raises(trust.UntrustedModel):
            deploy.rollback_deploy(params, engine="local")
        assert retrain(["rollback", "--no-redeploy", "--params", _pfile(params)]) == 1
        _one_line_refusal(capsys.readouterr().err, evil)
        assert registry.champion_version(params) == reg.good
        # the gate's challenger load (unsigned by design): the project's format and types only
        with pytest.raises(Exception):  # noqa: B017 - no model.skops / an untrusted type
            load_challenger(params.tracking_uri, f"models:/{name}/{evil}", spec)
    # an image's baked folder: verified again before the server loads it
    baked = Path(trust.download_model(params.tracking_uri, name, reg.skops_v, params.root / "b"))
    (baked / SPEC_FILE).write_text(json.dumps({"spec": spec.to_dict(), "model_version": "9"}))
    shutil.copy(key, baked / trust.PUBLIC_KEY_FILE)
    with pytest.raises(trust.UntrustedModel, match="v9 refused: not signed"):
        DirectorySource(baked).load("9")

    assert not reg.marker.exists(), "an attacker's model ran code"
    _point(params, "champion", reg.good)
    for alias in ("canary", "previous"):
        registry.client(params).delete_registered_model_alias(name, alias)


def test_even_a_wrongly_signed_attacker_version_runs_nothing(reg):
    """Defence in depth: a human overrides (signs) an attacker's version by mistake; it still
    loads nothing but a skops file with the project's trusted types."""
    params = reg.params
    spec = ServingSpec.from_params(params)
    for evil in reg.attackers:
        assert "signed as an override" in sign_override(params, evil, reason="by mistake")
        with pytest.raises(Exception) as err:  # noqa: PT011 - no model.skops / untrusted type
            load_registered(params.tracking_uri, spec, evil, params.paths.signing_public_key)
        assert "model.skops" in str(err.value) or "subprocess.getoutput" in str(err.value)
    assert not reg.marker.exists(), "an attacker's model ran code"


def test_a_tampered_version_is_refused_and_no_override_signs_it(reg):
    params = reg.params
    spec = ServingSpec.from_params(params)
    with pytest.raises(trust.UntrustedModel) as err:
        load_registered(params.tracking_uri, spec, reg.tampered, params.paths.signing_public_key)
    _one_line_refusal(str(err.value), reg.tampered)
    assert "files differ from what was signed (changed: model.skops)" in str(err.value)
    with pytest.raises(SigningError, match="does not sign tampered files"):
        sign_override(params, reg.tampered, reason="let it out")


def test_a_gate_rejected_version_loads_only_after_an_audited_override(reg, capsys):
    params = reg.params
    spec = ServingSpec.from_params(params)
    key = params.paths.signing_public_key
    with pytest.raises(trust.UntrustedModel, match="the gate rejected it, so it was never signed"):
        load_registered(params.tracking_uri, spec, reg.rejected, key)
    rc = retrain(["promote", reg.rejected, "--reason", "checked by hand", "--params",
                  _pfile(params)])  # fmt: skip
    assert rc == 0 and "signed as an override by tests" in capsys.readouterr().out
    loaded = load_registered(params.tracking_uri, spec, reg.rejected, key)
    manifest = trust.Manifest.parse(loaded.tags[trust.MANIFEST_TAG])
    assert (manifest.verdict, manifest.signed_by, manifest.reason) == (
        "override", "tests", "checked by hand",
    )  # fmt: skip
    assert manifest.extra == {"gate": "fail"}
    kinds = [(e["kind"], e["version"], e["actor"]) for e in registry.read_history(params)]
    assert ("signature", reg.rejected, "tests") in kinds
    assert ("override", reg.rejected, "tests") in kinds
    _point(params, "champion", reg.good)


def test_a_signed_version_loads_and_the_key_stays_private(reg):
    params = reg.params
    spec = ServingSpec.from_params(params)
    loaded = load_registered(params.tracking_uri, spec, reg.good, params.paths.signing_public_key)
    assert loaded.version == reg.good and loaded.scorer.mode == "compiled"
    assert set(loaded.digests) >= {trust.MODEL_FILE, "MLmodel"}
    assert params.paths.signing_key.stat().st_mode & 0o777 == 0o600
    assert params.paths.signing_key.is_relative_to(params.root / ".keys")


def test_the_payloads_are_live_when_loaded_the_way_the_artifact_asks(reg, tmp_path):
    """The same files, loaded as the code used to (format and trusted types from MLmodel), do
    run their payload: the refusals above are what kept the marker away."""
    import skops.io

    params, name = reg.params, reg.params.mlflow.registered_model
    for evil in reg.attackers:
        d = Path(trust.download_model(params.tracking_uri, name, evil, tmp_path / evil))
        flavor = yaml.safe_load((d / "MLmodel").read_text())["flavors"]["sklearn"]
        path = d / flavor["pickled_model"]
        if flavor["serialization_format"] == "skops":
            skops.io.load(path, trusted=flavor["skops_trusted_types"])
        else:
            pickle.loads(path.read_bytes())  # noqa: S301 - the point of the test
        assert reg.marker.exists()
        reg.marker.unlink()


def test_train_logs_only_models_the_fixed_trusted_types_can_load(prefit):
    import subprocess

    from pipelines.edges.tracking import trusted_types

    for model in prefit.values():
        assert set(trusted_types(model)) <= set(trust.TRUSTED_TYPES)
    with pytest.raises(ValueError, match=r"subprocess\.getoutput.*TRUSTED_TYPES"):
        trusted_types({"model": subprocess.getoutput})

"""The workspace layout: every file and folder the pipeline reads or writes, spelled here only.

Folders come from ``paths:``, ``nightly:`` and ``serve:`` in params.yaml (resolved by
:attr:`pipelines.config.Params.paths`); every name inside them is fixed here and nowhere else.
A stage that can write to another folder (``--out``) gets the same names there through its
``*Out`` object. ``dvc.yaml`` spells the same paths for DVC: a test checks that each of its
``deps``/``outs``/``metrics``/``plots`` is a path of this module. It runs over 400 lines
because that is its job: every path of the workspace, each with the line that says what it
holds, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import settings


@dataclass(frozen=True)
class ValidateOut:
    folder: Path

    @property
    def result(self) -> Path:
        return self.folder / "validation.json"

    @property
    def docs(self) -> Path:
        """Great Expectations Data Docs (a folder)."""
        return self.folder / "validation_docs"


@dataclass(frozen=True)
class DriftOut:
    folder: Path

    @property
    def result(self) -> Path:
        return self.folder / "drift.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def report(self) -> Path:
        return self.folder / "drift.html"


@dataclass(frozen=True)
class EvaluateOut:
    folder: Path

    @property
    def evaluation(self) -> Path:
        return self.folder / "evaluation.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.parquet"

    @property
    def calibrator(self) -> Path:
        """The score calibrator fitted on the held-out rows (also kept in the model's folder)."""
        return self.folder / "calibrator.json"

    def plot(self, name: str, suffix: str) -> Path:
        """``roc``, ``confusion`` or ``calibration``; ``.json`` (DVC's data) or ``.png``."""
        if name not in ("roc", "confusion", "calibration") or suffix not in (".json", ".png"):
            raise ValueError(f"no evaluation plot {name}{suffix}")
        return self.folder / "plots" / f"{name}{suffix}"


@dataclass(frozen=True)
class FairnessOut:
    folder: Path

    @property
    def result(self) -> Path:
        return self.folder / "fairness.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def plot(self) -> Path:
        return self.folder / "plots" / "fairness.png"


@dataclass(frozen=True)
class GateOut:
    folder: Path

    @property
    def decision(self) -> Path:
        return self.folder / "decision.json"

    @property
    def evidence(self) -> Path:
        return self.folder / "evidence.json"

    @property
    def markdown(self) -> Path:
        return self.folder / "report.md"

    @property
    def html(self) -> Path:
        return self.folder / "report.html"


@dataclass(frozen=True)
class CardOut:
    """A registered version's model card (:mod:`pipelines.release.card`)."""

    folder: Path

    @property
    def markdown(self) -> Path:
        return self.folder / "model_card.md"

    @property
    def html(self) -> Path:
        return self.folder / "model_card.html"


@dataclass(frozen=True)
class MonitorOut:
    folder: Path

    @property
    def verdict(self) -> Path:
        return self.folder / "verdict.json"

    @property
    def markdown(self) -> Path:
        return self.folder / "report.md"

    @property
    def drift_report(self) -> Path:
        return self.folder / "drift.html"

    @property
    def metrics(self) -> Path:
        """Prometheus' text format (node exporter's textfile collector)."""
        return self.folder / "metrics.prom"


@dataclass(frozen=True)
class CanaryOut:
    folder: Path  # one canary run: the version and when it started

    @property
    def decision(self) -> Path:
        return self.folder / "decision.json"

    @property
    def markdown(self) -> Path:
        return self.folder / "report.md"


@dataclass(frozen=True)
class Paths:
    """The workspace's folders (from params.yaml) and every name inside them."""

    root: Path
    data: Path
    reports: Path
    models: Path
    suite: Path
    landing: Path
    quarantine: Path
    live: Path  # the prediction log's folder (local default)

    # ---- data
    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def prepared(self) -> Path:
        return self.data / "prepared"

    @property
    def prepared_reference(self) -> Path:
        return self.prepared / "reference.parquet"

    @property
    def prepared_current(self) -> Path:
        return self.prepared / "current.parquet"

    @property
    def accepted(self) -> Path:
        """Accepted batches, one per night (DVC-tracked as ``accepted.dvc``)."""
        return self.data / "accepted"

    def accepted_batch(self, day: str) -> Path:
        return self.accepted / f"{day}.parquet"

    def retraction(self, day: str) -> Path:
        """Why an accepted batch was retracted (``retrain retract``), beside the batch."""
        return self.accepted / f"{day}.retracted.json"

    @property
    def window(self) -> Path:
        return self.data / "window"

    @property
    def window_train(self) -> Path:
        return self.window / "train.parquet"

    @property
    def window_eval(self) -> Path:
        return self.window / "eval.parquet"

    @property
    def window_manifest(self) -> Path:
        """The batches in the training window and those left out as retracted."""
        return self.window / "window.json"

    @property
    def processed(self) -> Path:
        """Landing files a night has taken in (kept, never deleted)."""
        return self.landing / "processed"

    @property
    def lock(self) -> Path:
        """The workspace lock every night and monitor pass takes (:mod:`pipelines.lock`)."""
        return self.data / ".nightly.lock"

    # ---- the live loop
    @property
    def monitor(self) -> Path:
        return self.reports / "monitor"

    def monitor_out(self) -> MonitorOut:
        return MonitorOut(self.monitor)

    @property
    def landed_keys(self) -> Path:
        """Outcomes (request id, row) the monitor has landed as a batch."""
        return self.live / "landed.parquet"

    @property
    def canary(self) -> Path:
        return self.reports / "canary"

    def canary_run(self, name: str) -> CanaryOut:
        return CanaryOut(self.canary / name)

    @property
    def loop(self) -> Path:
        """The demo loop's outcome (``retrain demo-loop``)."""
        return self.reports / "loop"

    @property
    def loop_summary(self) -> Path:
        return self.loop / "summary.json"

    @property
    def loop_outcomes(self) -> Path:
        """The outcomes the demo feeds back as files (``retrain labels``)."""
        return self.loop / "outcomes"

    @property
    def tracked_params(self) -> Path:
        """The params file DVC tracks: the keys under ``params:`` in dvc.yaml are read there."""
        return self.root / "params.yaml"

    @property
    def dvc_yaml(self) -> Path:
        return self.root / "dvc.yaml"

    @property
    def params_before_loop(self) -> Path:
        """The workspace's params.yaml as it was, kept while the demo loop runs with its own
        settings written into params.yaml (the file DVC tracks); put back when it ends."""
        return self.root / ".params-before-loop.yaml"

    # ---- models, MLflow, serving
    @property
    def model(self) -> Path:
        return self.models / "model"

    @property
    def artifacts(self) -> Path:
        """MLflow's artifact store with the embedded (SQLite) tracking default."""
        return self.root / "mlartifacts"

    @property
    def signing_key(self) -> Path:
        """The model signing key, or $RETRAIN_SIGNING_KEY; loads verify with its ``.pub``."""
        return settings().signing_key or self.root / ".keys" / "model-signing.key"

    @property
    def signing_public_key(self) -> Path:
        """The public half of :attr:`signing_key`: all a load needs to verify a version."""
        return self.signing_key.with_suffix(".pub")

    @property
    def serving(self) -> Path:
        return self.models / "serving"

    @property
    def nginx(self) -> Path:
        return self.serving / "nginx"

    def image_context(self, version: str) -> Path:
        """The serving image's build context for a model version."""
        return self.serving / "build" / f"v{version}"

    # ---- stage outputs
    def stage(self, name: str) -> Path:
        return self.reports / name

    def validate_out(self, folder: Path | None = None) -> ValidateOut:
        return ValidateOut(folder or self.stage("validate"))

    def drift_out(self, folder: Path | None = None) -> DriftOut:
        return DriftOut(folder or self.stage("drift"))

    def evaluate_out(self, folder: Path | None = None) -> EvaluateOut:
        return EvaluateOut(folder or self.stage("evaluate"))

    def fairness_out(self, folder: Path | None = None) -> FairnessOut:
        return FairnessOut(folder or self.stage("fairness"))

    def gate_out(self, folder: Path | None = None) -> GateOut:
        return GateOut(folder or self.stage("gate"))

    @property
    def validation_json(self) -> Path:
        return self.validate_out().result

    @property
    def validation_docs(self) -> Path:
        return self.validate_out().docs

    @property
    def drift_result(self) -> Path:
        return self.drift_out().result

    @property
    def train_record(self) -> Path:
        return self.stage("train") / "train.json"

    @property
    def evaluation(self) -> Path:
        return self.evaluate_out().evaluation

    @property
    def predictions(self) -> Path:
        return self.evaluate_out().predictions

    @property
    def fairness(self) -> Path:
        return self.fairness_out().result

    @property
    def gate_decision(self) -> Path:
        return self.gate_out().decision

    @property
    def gate_evidence(self) -> Path:
        return self.gate_out().evidence

    @property
    def gate_report(self) -> Path:
        return self.gate_out().html

    @property
    def gate_markdown(self) -> Path:
        return self.gate_out().markdown

    @property
    def registration(self) -> Path:
        return self.stage("register") / "registration.json"

    def model_card(self) -> CardOut:
        """The card of the version ``register`` registered last."""
        return CardOut(self.stage("register"))

    @property
    def reports_to_open(self) -> tuple[Path, ...]:
        """The reports a person opens after a run (HTML and plots), in pipeline order."""
        return (
            self.validation_docs,  # a Data Docs folder: its validation page
            self.drift_out().report,
            self.evaluate_out().plot("roc", ".png"),
            self.fairness_out().plot,
            self.gate_markdown,
            self.gate_report,
            self.model_card().html,
        )

    # ---- the night, the registry, serving
    @property
    def nights(self) -> Path:
        return self.reports / "nights"

    def night(self, day: str) -> Path:
        return self.nights / day

    def night_record(self, day: str) -> Path:
        return self.night(day) / "summary.json"

    def night_validation(self, day: str) -> ValidateOut:
        """The night's batch validation (``validation.json``, Data Docs)."""
        return ValidateOut(self.night(day))

    def night_drift(self, day: str) -> DriftOut:
        return DriftOut(self.night(day) / "drift")

    def night_model_card(self, day: str) -> CardOut:
        """The card of the version the night registered, with the night's other reports."""
        return CardOut(self.night(day))

    @property
    def night_state(self) -> Path:
        return self.nights / "state.json"

    @property
    def registry_history(self) -> Path:
        return self.reports / "registry" / "history.jsonl"

    @property
    def deploy_history(self) -> Path:
        return self.reports / "deploy" / "history.jsonl"

    @property
    def deploy_state(self) -> Path:
        return self.serving / "state.json"

    @property
    def notifications(self) -> Path:
        return self.reports / "notifications.jsonl"

    def reproduction(self, version: str) -> Path:
        return self.reports / "reproduce" / f"v{version}"

    @property
    def serve_log(self) -> Path:
        """A local (no container) server's output."""
        return self.serving / "serve.log"

    @property
    def serve_pid(self) -> Path:
        return self.serving / "serve.pid"

"""`retrain status`: the registry's aliases, what serves, the last nights, the registry's events.

It must answer at once, so it reads what it shows from the workspace's own files (the deploy
state, the night records, the registry history) and the aliases in one cheap read
(:mod:`pipelines.edges.aliases`): no pandas, no scikit-learn, and MLflow only for a store
that is neither SQLite nor a tracking server.
:func:`read_status` gathers a :class:`StatusView`; :func:`format_status` is pure and wraps
every line to the width it is given, reasons in full.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Params
from pipelines.settings import mask_url

ALIASES = ("champion", "previous", "pending", "rollout")  # as pipelines.edges.registry names them
INDENT = "      "


@dataclass(frozen=True)
class StatusView:
    """What `retrain status` shows, gathered; :func:`format_status` lays it out."""

    model: str
    registry: str  # the tracking URI, masked
    aliases: dict[str, str]
    registry_error: str | None = None
    serving: str = ""
    nights: list[str] = field(default_factory=list)  # "<date>: <outcome>", oldest first
    nights_total: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # the history's, oldest first
    events_total: int = 0


def _wrap(text: str, width: int, first: str = "  ", rest: str = INDENT) -> list[str]:
    return textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=False,  # a path or an address stays whole
    ) or [first.rstrip()]


def format_status(view: StatusView, width: int = 100) -> str:
    """The status screen: every line at most ``width`` wide (a single word longer than that,
    such as a path, stays whole), every reason in full."""
    names = ", ".join(
        f"{alias} v{view.aliases[alias]}" if alias in view.aliases else f"{alias} -"
        for alias in ALIASES
    )
    lines = _wrap(f"model {view.model}: {names}", width, first="", rest="  ")
    lines += _wrap(f"registry: {view.registry}", width)
    if view.registry_error:
        lines += _wrap(f"registry NOT READ: {view.registry_error}", width)
    lines += _wrap(f"serving: {view.serving}", width)
    shown = f"last {len(view.nights)} of {view.nights_total}" if view.nights_total else "none yet"
    lines.append(f"nights ({shown}):")
    for note in view.nights:
        lines += _wrap(note, width)
    shown = f"last {len(view.events)} of {view.events_total}" if view.events_total else "none yet"
    lines.append(f"registry events ({shown}):")
    for ev in view.events:
        head = f"{ev.get('at', '?')}  {ev.get('kind', '?')} v{ev.get('version', '?')}"
        lines += _wrap(f"{head} by {ev.get('actor', '?')}:", width)
        lines += _wrap(str(ev.get("reason") or "(no reason recorded)"), width, first=INDENT)
    return "\n".join(lines)


def _answering(address: str, timeout: float) -> str:
    """What the server at ``address`` says it serves (``/version``), in a few words."""
    try:
        with urllib.request.urlopen(f"http://{address}/version", timeout=timeout) as resp:  # noqa: S310
            served = json.loads(resp.read()).get("model_version")
    except (OSError, ValueError) as err:
        return f"not answering ({type(err).__name__})"
    return f"answers v{served}" if served else "answers, no model loaded"


def serving_line(params: Params, aliases: dict[str, str], probe: float = 0.5) -> str:
    """Which version serves: the deployment recorded by `retrain deploy` (and, asked once with
    a ``probe``-second timeout, what its address answers), else the champion alias that a
    running `retrain serve` follows; a version out beside it as a canary/shadow."""
    path = params.paths.deploy_state
    state = json.loads(path.read_text()) if path.is_file() else {}
    champion = aliases.get("champion")
    if not state:
        text = (
            f"no deployment recorded; a running `retrain serve` serves the champion alias "
            f"(v{champion or '-'}); `retrain deploy` makes a deployment"
        )
    else:
        mode, address = state.get("mode", "?"), state.get("address", "?")
        active = state.get("active") or {}
        live = _answering(address, probe) if probe > 0 else "not asked"
        if mode == "local":
            text = (
                f"local `retrain serve` at {address}, following the champion alias "
                f"(v{champion or '-'}; v{active.get('version', '?')} at its last deploy): {live}"
            )
        else:
            n = active.get("replicas") or len(active.get("containers") or []) or 1
            text = (
                f"v{active.get('version', '?')} deployed, {n} {mode} replica(s) behind nginx "
                f"at {address}: {live}"
            )
            if champion and champion != str(active.get("version")):
                text += f"; the champion is v{champion}: not deployed yet"
    if "rollout" in aliases:
        text += f"; v{aliases['rollout']} out beside it (`retrain canary status`)"
    return text


def night_notes(params: Params, last: int) -> tuple[list[str], int]:
    """The last ``last`` nights as ``<date>: <outcome>`` notes (oldest first), and how many
    nights there are; an unreadable record is named, never skipped silently."""
    from pipelines.night.outcome import night_note
    from pipelines.records import NightRecord

    folder = params.paths.nights
    days = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    days = [d for d in days if params.paths.night_record(d).is_file()]
    notes = []
    for day in days[-last:] if last > 0 else []:
        path = params.paths.night_record(day)
        try:
            rec = NightRecord.from_dict(json.loads(path.read_text()))
        except ValueError as err:
            notes.append(f"{day}: record not readable ({path}): {err}")
            continue
        note = night_note(rec)
        notes.append(f"{note}; {rec.deploy.line()}" if rec.deploy is not None else note)
    return notes, len(days)


def read_status(params: Params, nights: int = 5, events: int = 10) -> StatusView:
    """Everything :func:`format_status` shows, from local files and one read of the aliases."""
    from pipelines.edges.aliases import AliasesUnavailable, read_aliases
    from pipelines.edges.registry import read_history

    model, uri = params.mlflow.registered_model, params.tracking_uri
    error = None
    try:
        aliases = read_aliases(uri, model)
    except AliasesUnavailable as err:
        aliases, error = {}, str(err)
    history = read_history(params)
    notes, total = night_notes(params, nights)
    return StatusView(
        model=model,
        registry=mask_url(uri) or uri,
        aliases=aliases,
        registry_error=error,
        serving=serving_line(params, aliases),
        nights=notes,
        nights_total=total,
        events=history[-events:] if events > 0 else [],
        events_total=len(history),
    )

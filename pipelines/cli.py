"""`retrain`: the command-line face of the pipeline.

Every command calls the same stage functions as `dvc repro` and the Airflow DAG. A little
over 400 lines: one short function per command and the one parser that names them all, kept
together so `retrain --help` and the code read in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import ConfigError, Params, load_params

if TYPE_CHECKING:  # the serving package is imported only by the commands that use it
    from pipelines.release.deploy import DeployResult


def _workspace_params(args: argparse.Namespace) -> Params:
    """The params of a command that runs the pipeline: the workspace's own params.yaml (the
    file DVC tracks), never another file the stages would read instead."""
    params = load_params(args.params)
    from pipelines.edges.dvc import check_params_file

    check_params_file(params)
    return params


def cmd_init(args: argparse.Namespace) -> int:
    """Make a workspace for a dataset: git + DVC, the pipeline, FILE as its params.yaml."""
    from pipelines.edges.workspace import init_workspace

    params = init_workspace(Path(args.dir), Path(args.params), force=args.force)
    print(f"init: workspace {params.root} for dataset {params.dataset.name!r}")
    print(f"  params: {params.file} (tracked by DVC, read by every stage)")
    if params.paths.suite.is_file():
        print(f"  next:   cd {params.root} && retrain run")
    else:  # a new dataset: its suite is profiled from its own prepared data, then reviewed
        print(f"  no expectation suite yet ({params.paths.suite}); next, in {params.root}:")
        print("          dvc repro prepare && retrain profile   (review the suite), retrain run")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Reproduce the pipeline with DVC, push data to the DVC remote, print the summary."""
    params = _workspace_params(args)
    from pipelines.edges import dvc as workspace
    from pipelines.night.summary import pipeline_summary

    try:
        workspace.repro(params, force=args.force)
    except workspace.DvcError as err:
        print(pipeline_summary(params))
        print(f"retrain: {err}", file=sys.stderr)
        return 1
    print(pipeline_summary(params))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Aliases, what serves, the last nights and the registry's events, read at once (local
    files and one read of the aliases; no MLflow client)."""
    import shutil

    from pipelines.night.status import format_status, read_status

    params = load_params(args.params, check_classifier=False)  # fits nothing: no scikit-learn
    view = read_status(params, nights=args.nights, events=args.events)
    try:
        print(format_status(view, width=shutil.get_terminal_size((100, 24)).columns), flush=True)
    except BrokenPipeError:  # `retrain status | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from pipelines.stages import validate

    argv = ["profile"] + (["--params", args.params] if args.params else [])
    argv += (["--data", args.data] if args.data else []) + (["--force"] if args.force else [])
    return validate.main(argv)


def cmd_retract(args: argparse.Namespace) -> int:
    """Retract an accepted batch: kept with the reason, left out of every later window."""
    params = load_params(args.params)
    from pipelines.edges import dvc
    from pipelines.lock import night_lock
    from pipelines.stages.window import retract

    with night_lock(params):  # not while a night writes the accepted batches
        record = retract(params, args.date, args.reason)
        if dvc.accepted_version(params) is not None:  # version the record with the batches
            dvc.version_accepted(params)
    print(f"retracted {args.date}: {args.reason} ({record}); later windows leave it out")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """An audited override: sign VERSION if the gate did not (who and why recorded), promote it."""
    params = load_params(args.params)
    from pipelines.edges import registry
    from pipelines.release.signing import sign_override

    print(sign_override(params, args.version, reason=args.reason))
    ev = registry.promote(params, args.version, reason=args.reason, kind="override")
    print(f"promoted v{ev.version} to champion (override by {ev.actor}): {ev.reason}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    """An audited signature without moving an alias (after a key rotation, say)."""
    params = load_params(args.params)
    from pipelines.release.signing import sign_override

    print(sign_override(params, args.version, reason=args.reason))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Previous champion back in one command: the alias, and the serving deployment if any."""
    params = load_params(args.params)
    from pipelines.edges import registry
    from pipelines.release import deploy

    state = deploy.read_state(params)
    if args.no_redeploy or not state:
        from pipelines.release.signing import verify_version

        name = params.mlflow.registered_model
        target = args.to or registry.alias_version(registry.client(params), name, registry.PREVIOUS)
        if target is not None:  # an unsigned or tampered target: refused, the alias stays
            verify_version(params, target)
        ev = registry.rollback(params, to=args.to, reason=args.reason)
        print(f"rolled back: champion is now v{ev.version} (was v{ev.previous_champion})")
        if not state:
            print("no deployment recorded: nothing to redeploy (a running `retrain serve`")
            print("follows the champion alias by itself)")
        return 0
    res = deploy.rollback_deploy(params, reason=args.reason, to=args.to)
    print(f"rolled back: champion is now v{res.version} (was v{res.previous})")
    return _report_deploy(res, "redeploy", "serving", "; the running version keeps serving")


def cmd_lineage(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines.edges import registry

    c = registry.client(params)
    mv = c.get_model_version(params.mlflow.registered_model, args.version)
    run = c.get_run(mv.run_id)
    out = {
        "model": params.mlflow.registered_model,
        "version": mv.version,
        "run_id": mv.run_id,
        "tags": dict(mv.tags),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
    }
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    """One night: validate the batch, quarantine or accept, drift, maybe retrain and promote."""
    params = _workspace_params(args)
    from pipelines.night.record import parse_day
    from pipelines.night.run import run_night

    day = parse_day(args.date)
    rec = run_night(
        params,
        day,
        batch=Path(args.batch) if args.batch else None,
        force_retrain=args.force_retrain,
        dry_run=args.dry_run,
        skip_deploy=args.skip_deploy,
        progress=_progress,
    )
    from pipelines.night.summary import night_line, unreadable_batch

    print(night_line(rec))
    if rec.deploy is not None:
        print(f"  {rec.deploy.line()}")
    print(f"summary: {params.paths.night_record(day)}")
    unreadable = unreadable_batch(rec)
    if unreadable:  # not a judged batch: the file or the dataset's format is wrong
        print(f"retrain: the batch could not be read: {unreadable}", file=sys.stderr)
        return 1
    if rec.deploy is not None and rec.deploy.status == "failed":
        print(f"retrain: night {day}: {rec.deploy.line()}", file=sys.stderr)
        return 1
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines.demo import simulate
    from pipelines.night.record import parse_day

    path = simulate.write_scenario(
        params, parse_day(args.date), args.scenario, seed=args.seed, fmt=args.format
    )
    print(f"simulate: wrote {args.scenario} batch {path}")
    return 0


def cmd_series(args: argparse.Namespace) -> int:
    """The main job: the pipeline on the dataset, then a series of nights over every scenario."""
    params = _workspace_params(args)
    from pipelines.demo import series

    return series.run_series(params, progress=_progress)


def cmd_reproduce(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines.reproduce import reproduce_version

    r = reproduce_version(params, args.version, sample=args.sample)
    verdict = "IDENTICAL" if r.identical else f"max |diff| {r.max_abs_diff:.2e}"
    print(
        f"reproduce v{r.version}: refitted on {r.train_rows:,} rows (data {r.train_version}); "
        f"predictions on {r.compared_rows:,} eval rows (data {r.eval_version}): {verdict}"
    )
    return 0 if r.max_abs_diff <= 1e-9 else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the champion locally; the model is swapped in place when the alias moves."""
    params = load_params(args.params)
    from pipelines.serve.app import local_app, run

    app = local_app(params, watch_interval=args.poll, log=not args.no_log)
    where = f"models:/{app.spec.model_name}@{app.spec.alias}"
    print(f"serving {where} on http://{args.host}:{args.port}", flush=True)
    run(app, args.host, args.port)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Deploy the champion (image + blue/green behind nginx, or the local server)."""
    params = load_params(args.params)
    from pipelines.release import deploy

    kw = {
        "engine": args.engine,
        "address": args.address,
        "base": args.base_image,
        "replicas": args.replicas,
    }
    if args.rollback:
        res = deploy.rollback_deploy(params, reason=args.reason, **kw)
    else:
        res = deploy.deploy(params, args.version, **kw)
    return _report_deploy(res, "deploy", "deployed")


def _report_deploy(res: DeployResult, what: str, ok_word: str, failed_note: str = "") -> int:
    """Print a deploy's checks and verdict; the exit code."""
    for line in res.checks:
        print(f"  {line}")
    verdict = ok_word if res.ok else f"FAILED ({res.reason}){failed_note}"
    print(f"{what} v{res.version} [{res.mode}] at {res.address}: {verdict}")
    return 0 if res.ok else 1


def cmd_labels(args: argparse.Namespace) -> int:
    """Feed true outcomes back: join them to logged answers by request id."""
    params = load_params(args.params)
    from pipelines.monitor.labels import feed_outcomes

    res = feed_outcomes(Path(args.file), params)
    print(f"labels: {res.rows:,} outcomes recorded, {res.matched:,} match a logged answer")
    if res.matched < res.rows:
        print(f"  not (yet) in the prediction log, e.g. {', '.join(res.unmatched_examples)}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """One monitor pass: live drift and performance, published; outcomes landed."""
    params = load_params(args.params)
    from pipelines.monitor.run import run_monitor

    res = run_monitor(params, land=not args.no_land, mlflow=not args.no_mlflow)
    v = res.verdict
    print(f"monitor: {v.summary()}")
    for r in v.reasons:
        print(f"  - {r}")
    if res.landed_rows:
        print(f"  {res.landed_rows:,} labelled rows landed in {res.landed_to}")
    if res.held_to:
        print(f"  new outcomes HELD, not landed: {res.outcomes and res.outcomes['reasons'][0]}")
        print(f"  kept in {res.held_to}")
    for name, path in res.reports.items():
        print(f"  {name}: {path}")
    print(f"  published: {', '.join(res.published)}")
    return 0


def cmd_demo_loop(args: argparse.Namespace) -> int:
    """serve -> log -> label -> monitor -> retrain -> gate -> canary -> promote, for real."""
    params = load_params(args.params)
    from pipelines.demo.loop import run_loop

    run_loop(params, _progress)
    return 0


def cmd_canary(args: argparse.Namespace) -> int:
    """The challenger beside the champion: status, start, promote, abort, decide."""
    params = load_params(args.params)
    from pipelines.release.canary import control

    if (args.action == "start") != bool(args.version):
        raise ValueError("canary: VERSION goes with start (the version to put out) only")
    if args.action == "start":
        from pipelines.release.plan import BY_HAND, plan, rollout_mode

        mode = args.mode or rollout_mode(plan(BY_HAND, params.deploy)) or "canary"
        c = control.start(params, args.version, mode=mode)
        print(f"canary: v{c.version} out in {c.mode} mode (share {c.share:g}) since {c.started}")
    elif args.action in ("promote", "abort"):
        act = control.promote if args.action == "promote" else control.abort
        ev = act(params, args.reason or f"{args.action} by hand")
        print(f"canary: {ev.kind} of v{ev.version} by {ev.actor}: {ev.reason}")
    else:
        out = control.status(params) if args.action == "status" else control.decide_and_act(params)
        print(json.dumps(out, indent=2, default=str) if args.json else out["summary"])
        for report in out.get("reports", []):
            print(f"  report: {report}")
    return 0


def _progress(msg: str) -> None:
    print(msg, flush=True)


def _count(text: str) -> int:
    """``--nights`` / ``--events``: how many to show, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return n


def _replicas(text: str) -> int:
    """``--replicas``: checked by the params schema's own rule for ``deploy.replicas``."""
    from pydantic import ValidationError

    from pipelines.config import DeployConfig

    try:
        return DeployConfig(replicas=int(text)).replicas
    except (ValueError, ValidationError) as err:
        errors = err.errors() if isinstance(err, ValidationError) else [{"msg": str(err)}]
        raise argparse.ArgumentTypeError(f"{text!r}: {errors[0]['msg']}") from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="retrain", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--params", default=None, help="params file (default: params.yaml)")
        p.set_defaults(func=fn)
        return p

    p = sub.add_parser("init", help=cmd_init.__doc__, description=cmd_init.__doc__)
    p.add_argument("dir", help="the workspace folder (made if absent)")
    p.add_argument("--params", required=True, help="the dataset's params file")
    p.add_argument("--force", action="store_true", help="replace a different params.yaml")
    p.set_defaults(func=cmd_init)
    p = add("run", cmd_run, "run the whole pipeline with `dvc repro`, then summarise it")
    p.add_argument("--force", action="store_true", help="rerun every stage")
    p = add("status", cmd_status, "aliases, what serves, the last nights, registry events")
    p.add_argument("--nights", type=_count, default=5, help="how many nights (default 5)")
    p.add_argument("--events", type=_count, default=10, help="how many events (default 10)")
    p = add("profile", cmd_profile, "generate a first expectation suite from reference data")
    p.add_argument("--data", default=None, help="reference data file (default: prepared)")
    p.add_argument("--force", action="store_true", help="overwrite an existing suite")
    p = add("retract", cmd_retract, "leave an accepted batch out of every later training window")
    p.add_argument("date", help="the night whose accepted batch is retracted")
    p.add_argument("--reason", required=True, help="why (kept beside the batch)")
    p = add("promote", cmd_promote, "make VERSION the champion (an audited override)")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why (recorded in the registry and history)")
    p = add("sign", cmd_sign, "sign VERSION by hand (an audited override; key rotation)")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why (recorded in the registry and history)")
    p = add("rollback", cmd_rollback, "restore the previous champion and redeploy it")
    p.add_argument("--to", default=None, help="version to restore (default: alias 'previous')")
    p.add_argument("--reason", default="rollback", help="why (recorded)")
    p.add_argument("--no-redeploy", action="store_true", help="move the alias only")
    p = add("lineage", cmd_lineage, "print where a model version came from")
    p.add_argument("version")
    p = add("nightly", cmd_nightly, "run one night: batch, validation, drift, retrain, gate")
    p.add_argument("--date", required=True, help="the night's date, YYYY-MM-DD")
    p.add_argument("--batch", default=None, help="batch file (default: landing/<date>.csv|parquet)")
    p.add_argument("--force-retrain", action="store_true", help="train a challenger regardless")
    p.add_argument("--dry-run", action="store_true", help="judge a challenger, touch no registry")
    p.add_argument(
        "--skip-deploy",
        action="store_true",
        help="deploy nothing tonight, even a new champion (the DAG form's skip_deploy)",
    )
    p = add("simulate", cmd_simulate, "write a scenario batch for a date into the landing folder")
    p.add_argument("--date", required=True, help="YYYY-MM-DD")
    p.add_argument(
        "--scenario",
        required=True,
        choices=["stable", "covariate_drift", "label_shift", "corrupt", "biased"],
    )
    p.add_argument("--seed", type=int, default=None, help="default: simulate.seed")
    p.add_argument("--format", default="csv", choices=["csv", "parquet"])
    add("series", cmd_series, "the main job: pipeline, then a night of every scenario")
    p = add("reproduce", cmd_reproduce, "refit VERSION from its lineage; compare predictions")
    p.add_argument("version")
    p.add_argument("--sample", type=int, default=2000, help="rows compared")
    p = add("serve", cmd_serve, "serve the champion over HTTP (swapped in place on promotion)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--poll", type=float, default=2.0, help="seconds between alias checks")
    p.add_argument("--no-log", action="store_true", help="no prediction log (benchmarks)")
    p = add("deploy", cmd_deploy, "build and switch to the champion's serving image")
    p.add_argument("--version", default=None, help="model version (default: the champion)")
    p.add_argument("--engine", default="auto", choices=["auto", "podman", "docker", "local"])
    p.add_argument("--address", default=None, help="stable HOST:PORT (default 127.0.0.1:8000)")
    p.add_argument("--base-image", default=None, help="default: python:3.11-slim, else offline")
    p.add_argument(
        "--replicas",
        type=_replicas,
        default=None,
        help="serving containers behind nginx (default: deploy.replicas in the params)",
    )
    p.add_argument("--rollback", action="store_true", help="roll the alias back and redeploy")
    p.add_argument("--reason", default="rollback", help="why (with --rollback; recorded)")
    p = add("labels", cmd_labels, "feed back true outcomes (CSV/Parquet: request_id, [row], label)")
    p.add_argument("file")
    p = add("monitor", cmd_monitor, "live drift and performance from the prediction log")
    p.add_argument("--no-land", action="store_true", help="do not land outcomes as a batch")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the pass in MLflow")
    p = add("demo-loop", cmd_demo_loop, "the production loop on this machine (end of make run)")
    p = add("canary", cmd_canary, "a challenger beside the champion, decided on live outcomes")
    p.add_argument("action", choices=["status", "start", "promote", "abort", "decide"])
    p.add_argument("version", nargs="?", help="with start: the version to put out")
    p.add_argument(
        "--mode",
        default=None,
        choices=["canary", "shadow"],
        help="default: the release plan's (deploy.rollout), else canary",
    )
    p.add_argument("--reason", default=None, help="with promote / abort: why (recorded)")
    p.add_argument("--json", action="store_true", help="status / decide: the whole decision")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ValueError) as err:
        print(f"retrain: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # busy lock, registry, DVC, reproduce: one readable line
        print(f"retrain: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`retrain`: the command-line face of the pipeline.

Every command calls the same stage functions as `dvc repro` and the Airflow DAG.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipelines.config import ConfigError, Params, load_params


def cmd_run(args: argparse.Namespace) -> int:
    """Reproduce the pipeline with DVC, push data to the DVC remote, print the summary."""
    params = load_params(args.params)
    from pipelines import workspace
    from pipelines.summary import pipeline_summary

    try:
        workspace.repro(params, force=args.force)
    except workspace.DvcError as err:
        print(pipeline_summary(params))
        print(f"retrain: {err}", file=sys.stderr)
        return 1
    print(pipeline_summary(params))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines import registry

    c = registry.client(params)
    name = params.mlflow.registered_model
    champ = registry.alias_version(c, name, registry.CHAMPION)
    prev = registry.alias_version(c, name, registry.PREVIOUS)
    print(f"model {name}: champion v{champ or '-'}, previous v{prev or '-'}")
    for ev in registry.read_history(params)[-10:]:
        print(f"  {ev['at']}  {ev['kind']:<12} v{ev['version']:<4} by {ev['actor']}: {ev['reason'][:90]}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from pipelines import validate

    argv = ["profile"] + (["--params", args.params] if args.params else [])
    argv += (["--data", args.data] if args.data else []) + (["--force"] if args.force else [])
    return validate.main(argv)


def cmd_promote(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines import registry

    ev = registry.promote(params, args.version, reason=args.reason, kind="override")
    print(f"promoted v{ev.version} to champion (override by {ev.actor}): {ev.reason}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines import registry

    ev = registry.rollback(params, to=args.to, reason=args.reason)
    print(f"rolled back: champion is now v{ev.version} (was v{ev.previous_champion})")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    from pipelines import registry

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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="retrain", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--params", default=None, help="params file (default: params.yaml)")
        p.set_defaults(func=fn)
        return p

    p = add("run", cmd_run, "run the whole pipeline with `dvc repro`, then summarise it")
    p.add_argument("--force", action="store_true", help="rerun every stage")
    add("status", cmd_status, "show champion, previous and recent registry events")
    p = add("profile", cmd_profile, "generate a first expectation suite from reference data")
    p.add_argument("--data", default=None, help="reference data file (default: prepared)")
    p.add_argument("--force", action="store_true", help="overwrite an existing suite")
    p = add("promote", cmd_promote, "make VERSION the champion (an audited override)")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why (recorded in the registry and history)")
    p = add("rollback", cmd_rollback, "restore the previous champion")
    p.add_argument("--to", default=None, help="version to restore (default: alias 'previous')")
    p.add_argument("--reason", default="rollback", help="why (recorded)")
    p = add("lineage", cmd_lineage, "print where a model version came from")
    p.add_argument("version")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"retrain: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

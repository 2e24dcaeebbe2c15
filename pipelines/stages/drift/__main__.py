"""``python -m pipelines.stages.drift``: the stage as ``dvc repro`` runs it."""

from pipelines.stages.drift.stage import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m pipelines.stages.evaluate``: the stage as ``dvc repro`` runs it."""

from pipelines.stages.evaluate.stage import main

if __name__ == "__main__":
    raise SystemExit(main())

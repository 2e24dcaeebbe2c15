"""``python -m pipelines.stages.validate run|profile``: see :mod:`.stage`."""

from pipelines.stages.validate.stage import main

if __name__ == "__main__":
    raise SystemExit(main())

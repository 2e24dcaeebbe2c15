"""The pipeline's stages, one module (or small package) each, named as in dvc.yaml and
params.yaml. Each has a pure core (data and typed config in, a value object out) and a
``main()`` edge that ``dvc repro`` runs (``python -m pipelines.stages.<name>``).

:data:`STAGES` is the one list of them, in order: the night runner, the Airflow DAG and the
README follow it, and a test checks it against dvc.yaml. This module imports nothing, so the
DAG file can read the list at parse time for free.
"""

STAGES: tuple[str, ...] = (
    "prepare",
    "window",
    "validate",
    "drift",
    "train",
    "evaluate",
    "fairness",
    "gate",
    "register",
)

# What a night reruns after accepting a batch (``prepare`` ran once for the dataset).
NIGHT_STAGES: tuple[str, ...] = STAGES[STAGES.index("window") :]
# A dry run judges the challenger and stops before the registry.
DRY_RUN_LAST = "gate"

"""The main job (`make run`): the pipeline on the dataset, then one night of every scenario.

Nights already finished in this workspace are not run again, so a second `make run` only
prints the table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from pipelines.config import Params


def run_series(params: Params, progress: Callable[[str], None] = print) -> int:
    from pipelines.demo import simulate
    from pipelines.edges import dvc
    from pipelines.night.record import load_record
    from pipelines.night.run import run_night
    from pipelines.night.summary import (
        night_table,
        pipeline_summary,
        rejection_lines,
        unreadable_batch,
    )

    progress("== the pipeline on the dataset (dvc repro) ==")
    dvc.repro(params)
    progress(pipeline_summary(params))
    records = []
    start = date.fromisoformat(params.simulate.series_start)
    for i, night in enumerate(params.simulate.series):
        day = (start + timedelta(days=i)).isoformat()
        rec = load_record(params, day)
        if not rec.finished:
            progress(
                f"\n== night {day}: {night.scenario}"
                f"{' (forced retrain)' if night.force_retrain else ''} =="
            )
            simulate.write_scenario(params, day, night.scenario)
            rec = run_night(params, day, force_retrain=night.force_retrain, progress=progress)
            for line in rejection_lines(rec):  # why the batch was rejected, where it went
                progress(line)
        rec.scenario = night.scenario
        records.append(rec)
    progress("\n" + night_table(records))
    progress(f"\nnight summaries: {params.paths.nights}/<date>/summary.json")
    # a corrupt batch is meant to be rejected; any other that cannot be read is an error
    unread = [
        (r.date, why) for r in records if r.scenario != "corrupt" and (why := unreadable_batch(r))
    ]
    for day, why in unread:
        progress(f"retrain: the {day} batch could not be read: {why}")
    return 1 if unread else 0

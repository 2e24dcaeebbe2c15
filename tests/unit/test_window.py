"""The training window and the held-out split: fresh rows are never trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import WindowConfig
from pipelines.stages.window import build_window, holdout_mask, row_hashes


def frame(n: int, start: int = 0, label: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(start, start + n, dtype=float), "y": [label] * n})


def test_split_is_deterministic_by_content_and_near_the_fraction():
    df = frame(10_000)
    m1 = holdout_mask(df, 0.3, seed=0)
    m2 = holdout_mask(df.sample(frac=1.0, random_state=1), 0.3, seed=0)
    assert abs(m1.mean() - 0.3) < 0.02
    # the same rows are held out whatever their order
    held = set(df[m1]["x"])
    shuffled = df.sample(frac=1.0, random_state=1)
    assert set(shuffled[m2]["x"]) == held
    assert set(df[holdout_mask(df, 0.3, seed=1)]["x"]) != held  # the seed matters


def test_duplicated_rows_never_straddle_train_and_eval():
    # rows repeated within and across batches, as resampling produces
    a = pd.concat([frame(500), frame(500)], ignore_index=True)
    b = pd.concat([frame(300, 200), frame(300, 200)], ignore_index=True)
    batches = {"2026-01-01": a, "2026-01-02": b}
    w = build_window(frame(100, 10_000), batches, frame(10), WindowConfig())
    assert len(w.eval) > 0
    assert not np.isin(row_hashes(w.eval), row_hashes(w.train)).any()
    assert w.eval_source == "held-out part of batch 2026-01-02"
    assert w.batches == ("2026-01-01", "2026-01-02")


def test_without_batches_eval_is_the_fallback_minus_any_training_duplicates():
    ref = frame(100)
    fallback = pd.concat([frame(5, 1000), frame(2)], ignore_index=True)  # 2 rows also in ref
    w = build_window(ref, {}, fallback, WindowConfig())
    assert len(w.train) == 100 and len(w.eval) == 5
    assert w.eval_source == "published held-out data"


def test_last_batches_and_reference_switch():
    batches = {f"2026-01-0{i}": frame(100, 1000 * i) for i in range(1, 5)}
    w = build_window(frame(50, 50_000), batches, frame(5), WindowConfig(last_batches=2))
    assert w.batches == ("2026-01-03", "2026-01-04")
    assert w.train["x"].min() >= 3000 or 50_000 <= w.train["x"].min()
    w2 = build_window(frame(50, 50_000), batches, frame(5), WindowConfig(include_reference=False))
    assert w2.train["x"].max() < 50_000
    with pytest.raises(ValueError, match="no training data"):
        build_window(frame(5), {}, frame(5), WindowConfig(include_reference=False))


def test_a_backfilled_night_is_judged_on_its_own_batch(tmp_path):
    """The batch accepted last judges, not the one whose date sorts last: a night backfilled for
    an earlier date is judged on its own held-out rows; the time travels in the file's footer."""
    from pipelines.data import write_parquet
    from pipelines.stages.window import ACCEPTED_AT, read_accepted_at, read_batches

    accepted = tmp_path / "accepted"
    accepted.mkdir()
    days = {"2026-01-05": "2026-02-01T02:00:00", "2026-01-03": "2026-02-02T02:00:00"}  # backfill
    for i, (day, at) in enumerate(days.items()):
        write_parquet(
            frame(400, 1000 * (i + 1)), accepted / f"{day}.parquet", metadata={ACCEPTED_AT: at}
        )
    write_parquet(frame(400, 9000), accepted / "2026-01-01.parquet")  # before the footer: no time
    batches, when = read_batches(accepted), read_accepted_at(accepted)
    assert when == days
    w = build_window(frame(50, 50_000), batches, frame(5), WindowConfig(), accepted_at=when)
    assert w.eval_source == "held-out part of batch 2026-01-03"
    assert set(w.eval["x"]) <= set(range(2000, 2400))
    assert w.batches == ("2026-01-01", "2026-01-03", "2026-01-05")  # all still trained on
    # no times known: the newest name judges, as before
    assert build_window(frame(50, 50_000), batches, frame(5), WindowConfig()).eval_source == (
        "held-out part of batch 2026-01-05"
    )
    # the judging batch outside a short window still judges, and is not trained on
    short = WindowConfig(last_batches=1)
    w1 = build_window(frame(50, 50_000), batches, frame(5), short, accepted_at=when)
    assert w1.batches == ("2026-01-05",) and w1.eval_source.endswith("2026-01-03")
    assert not set(w1.train["x"]) & set(range(2000, 2400))

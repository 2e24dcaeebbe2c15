"""The demo loop's traffic: rows the champion never trained on, a share of them above a quantile
of one feature, in disjoint waves; a clear error when there are too few."""

from __future__ import annotations

import pytest

from pipelines.demo import loop
from pipelines.edges import registry
from pipelines.files import write_json
from tests.support.workspace import make_workspace


@pytest.fixture()
def workspace(tmp_path, adult_current, monkeypatch):
    params = make_workspace(tmp_path / "ws")
    p = params.paths
    p.prepared_current.parent.mkdir(parents=True, exist_ok=True)
    adult_current.to_parquet(p.prepared_current)
    p.accepted.mkdir(parents=True, exist_ok=True)
    accepted(adult_current.iloc[:4000], p.accepted_batch("2026-01-01"), "2026-01-01T02:00:00")
    accepted(adult_current.iloc[4000:8000], p.accepted_batch("2026-01-03"), "2026-01-03T02:00:00")
    write_json(
        p.reports / "nights" / "2026-01-01" / "summary.json",
        {"date": "2026-01-01", "promoted": "2"},
    )
    monkeypatch.setattr(registry, "champion_version", lambda params: "2")
    history = [{"kind": "promotion", "version": "2", "at": "2026-01-01T02:10:00+00:00"}]
    monkeypatch.setattr(registry, "read_history", lambda params: history)
    return params


def accepted(df, path, at: str) -> None:
    """An accepted batch as a night writes it: the time it was accepted in the file's footer."""
    from pipelines.data import write_parquet
    from pipelines.stages.window import ACCEPTED_AT

    write_parquet(df, path, metadata={ACCEPTED_AT: f"{at}.000000+00:00"})


def test_unseen_rows_leave_out_what_the_champion_could_have_trained_on(workspace, adult_current):
    unseen = loop.unseen_by_champion(workspace, adult_current)
    feats = list(workspace.dataset.features.all)
    seen = adult_current.iloc[:4000][feats].drop_duplicates()
    assert unseen[feats].merge(seen, on=feats).empty
    # batches accepted after the champion's night stay available
    assert len(unseen) > len(adult_current) - 4000 - 50


def test_a_champion_from_before_any_batch_has_seen_none_of_them(workspace, adult_current):
    """The first champion (the bootstrap run, before any night) trained on no batch, however many
    nights have been accepted since without a promotion."""
    history = [{"kind": "promotion", "version": "2", "at": "2025-12-31T00:00:00+00:00"}]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "read_history", lambda params: history)
        assert len(loop.unseen_by_champion(workspace, adult_current)) == len(adult_current)
    # a batch whose acceptance time is unknown counts as seen
    adult_current.iloc[8000:9000].to_parquet(workspace.paths.accepted_batch("2025-12-30"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "read_history", lambda params: history)
        unseen = loop.unseen_by_champion(workspace, adult_current)
    assert len(adult_current) - 1000 - 50 < len(unseen) <= len(adult_current) - 1000 + 50


def test_waves_are_disjoint_shifted_and_refuse_too_few_rows(workspace, adult_current):
    first, second = loop.waves(workspace, seed=0)
    cfg = workspace.simulate.loop
    col = cfg.column or workspace.dataset.features.numeric[0]
    cut = adult_current[col].quantile(cfg.quantile)
    assert len(first) == cfg.rows and len(second) > 300
    for wave in (first, second):
        assert abs((wave[col] > cut).mean() - cfg.shifted_share) < 0.05
    feats = list(workspace.dataset.features.all)
    assert first[feats].merge(second[feats], on=feats).shape[0] < 10  # (a few duplicate rows)
    big = workspace.simulate.model_copy(update={"loop": cfg.model_copy(update={"rows": 20_000})})
    with pytest.raises(ValueError, match="simulate.loop.rows=20000"):
        loop.waves(workspace.model_copy(update={"simulate": big}), seed=0)


def test_the_loop_table_reads_a_stored_result():
    text = loop.loop_table(
        {"champion_before": "2", "traffic_rows": 3000, "monitor": {"drift_share": 0.36,
         "live": {"point": 0.9, "lower": 0.89, "upper": 0.91}, "baseline": 0.899,
         "retrain": True, "landed_rows": 3000}, "night": {"outcome": "not_promoted"},
         "canary_version": "6", "canary_decision": {"verdict": "promote"},
         "champion_after": "6", "seconds": 120}
    )  # fmt: skip
    assert "RETRAIN" in text and "v6" in text and "PROMOTE" in text and "held" in text


def test_a_concept_change_flips_the_labels_above_a_quantile(workspace, adult_current):
    from pipelines.demo.simulate import concept_change

    ds, cfg = workspace.dataset, workspace.simulate.loop.concept

    def changed(**concept):
        return concept_change(
            adult_current, adult_current, ds, cfg.model_copy(update=concept), seed=0
        )

    assert changed(column=None) is adult_current
    column = ds.features.numeric[0]
    above = (adult_current[column] > adult_current[column].quantile(0.5)).to_numpy()
    flipped = (changed(column=column)[ds.target] != adult_current[ds.target]).to_numpy()
    assert flipped[above].all() and not flipped[~above].any()
    assert not (changed(column=column, flip_rate=0.0)[ds.target] != adult_current[ds.target]).any()
    with pytest.raises(ValueError, match="simulate.loop.concept.column"):
        changed(column=ds.features.categorical[0])

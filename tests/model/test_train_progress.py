"""Progress lines while training (issue 16): iterations done, elapsed and expected, told every
few seconds through the stage's logging; the fitted model is byte for byte the one a fit
without them makes. Tiny models on a sample of Adult (a second or two each)."""

from __future__ import annotations

import pickle
import re
import threading
from typing import Any

import pytest

from pipelines.data import feature_frame, labels
from pipelines.stages.train import FitProgress, build_pipeline, fit_features

SMALL = {
    "hist_gradient_boosting": {"max_iter": 25},
    "gradient_boosting": {"n_estimators": 15},
    "logistic_regression": {},
}


@pytest.fixture(scope="module")
def sample(adult_reference) -> tuple[Any, Any]:
    return adult_reference.sample(2000, random_state=3)


def _cfg(params, classifier: str):
    return params.train.model_copy(
        update={"classifier": classifier, "hyperparameters": SMALL[classifier]}
    )


@pytest.mark.parametrize("classifier", list(SMALL))
def test_the_model_is_the_same_with_progress_lines(params, sample, classifier, capsys):
    X, y = feature_frame(sample, params.dataset), labels(sample, params.dataset)
    cfg = _cfg(params, classifier)
    plain = fit_features(X, y, params.dataset, cfg)
    told: list[str] = []
    watched = fit_features(X, y, params.dataset, cfg, progress=told.append, every=0.001)
    assert pickle.dumps(watched) == pickle.dumps(plain)
    assert watched.named_steps["classifier"].get_params()["verbose"] == 0
    out = capsys.readouterr().out
    assert "[1/" not in out and "Iter" not in out  # the estimator's own lines never show
    total = next(iter(SMALL[classifier].values()), None)
    if total is None:  # no iteration lines to read: elapsed time only, then done
        assert re.fullmatch(r"train: fitted in \d+\.\d s", told[-1]), told
    else:
        assert re.fullmatch(rf"train: {total} iterations in \d+\.\d s", told[-1]), told
        steps = [m for t in told if (m := re.match(rf"train: (\d+)/{total} iterations", t))]
        assert steps, told  # at least one line during the fit, with the total
        done = [int(m.group(1)) for m in steps]
        assert done == sorted(done) and done[-1] <= total


def test_a_line_says_iterations_elapsed_and_expected_at_the_pace_so_far(params):
    told: list[str] = []
    p = FitProgress(10.0, told.append)
    assert p.line(3.0) == "train: fitting, 3 s elapsed"  # before the first iteration
    clf_model = build_pipeline(params.dataset, _cfg(params, "hist_gradient_boosting"))
    with p.watching(clf_model, "hist_gradient_boosting"):
        print("Binning 0.001 GB of training data: 0.010 s")
        print("[1/200] ", end="")  # the estimator starts its first iteration: none done yet
        assert p.done == 0 and p.total == 200
        print("1 tree, 31 leaves, max depth = 8, in 0.005s")
        print("[101/200] ", end="")
    assert p.done == 100
    since = p._first[0] if p._first else 0.0
    line = p.line(since + 50.0)  # 100 iterations in 50 s: 0.5 s each, 100 to go
    assert re.fullmatch(r"train: 100/200 iterations, \d+ s elapsed, about 50 s to go", line)
    assert told == []  # nothing told within the 10 s


def test_what_other_threads_print_during_a_fit_still_shows(params, capsys):
    model = build_pipeline(params.dataset, _cfg(params, "hist_gradient_boosting"))
    with FitProgress(10.0, lambda _: None).watching(model, "hist_gradient_boosting"):
        print("[3/25] from the fit")
        other = threading.Thread(target=print, args=("from another thread",))
        other.start()
        other.join()
    out = capsys.readouterr().out
    assert "from another thread" in out and "from the fit" not in out

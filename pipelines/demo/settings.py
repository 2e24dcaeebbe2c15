"""The demo loop's settings in the workspace's own ``params.yaml`` while it runs.

The loop's night trains on the live batch alone and puts its challenger out in shadow: settings
of its own (``simulate.loop``). They are written into the file DVC tracks, never into a second
file the stages would read instead, so ``dvc.lock`` records what the loop's night ran with and
the next night (the file put back) reruns what those settings changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.config import Params
from pipelines.files import write_text


@contextmanager
def loop_settings(params: Params) -> Iterator[Params]:
    """The workspace's params with the loop's settings (``deploy.rollout`` from
    ``simulate.loop.rollout``, the ``window`` the loop's night trains on), written into the
    workspace's own ``params.yaml`` for as long as the loop runs: the file DVC tracks is the
    file the stages read, and ``dvc.lock`` records the settings the loop's night ran with. The
    file as it was is kept beside it (:attr:`~pipelines.paths.Paths.params_before_loop`) and
    put back when the loop ends, or, after a loop that was killed, when the next one starts.
    Shadow by default: a paired comparison decides on a few thousand outcomes; a canary at share
    0.2 needs about 15,000."""
    import yaml

    from pipelines.config import load_params
    from pipelines.edges.dvc import check_params_file

    check_params_file(params)  # the loop runs nights: only on the file DVC tracks
    restore_params(params)
    tracked, kept = params.paths.tracked_params, params.paths.params_before_loop
    text = tracked.read_text()
    raw = yaml.safe_load(text)
    raw.setdefault("deploy", {})["rollout"] = params.simulate.loop.rollout
    window = raw.setdefault("window", {})
    window["last_batches"] = params.simulate.loop.last_batches
    window["holdout_fraction"] = params.simulate.loop.holdout_fraction
    window["include_reference"] = params.simulate.loop.include_reference
    head = f"# the demo loop's settings, while it runs; the file as it was: {kept.name}\n"
    write_text(kept, text)  # first: a loop killed from here on leaves the file to put back
    try:
        write_text(tracked, head + yaml.safe_dump(raw, sort_keys=False))
        yield load_params(tracked)
    finally:
        restore_params(params)


def restore_params(params: Params) -> bool:
    """Put back the params file a loop replaced (kept while it ran); True when there was one."""
    kept = params.paths.params_before_loop
    if not kept.is_file():
        return False
    write_text(params.paths.tracked_params, kept.read_text())
    kept.unlink()
    return True

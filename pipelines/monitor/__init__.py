"""Watching the model while it serves: live drift and live performance from the prediction log,
the verdict published (MLflow, Prometheus), labelled rows turned into the next landing batch.

- :mod:`.live`: the pure core (frames in, :class:`~.live.LiveVerdict` out).
- :mod:`.metrics`: the Prometheus names the monitor publishes (one list).
- :mod:`.run`: the edge: read the log and the registry, judge, publish, land.
"""

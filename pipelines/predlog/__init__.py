"""The prediction log: every answer serving gives, and every outcome fed back later.

- :mod:`~pipelines.predlog.writer`: the hot-path writer (in the serving image);
- :mod:`~pipelines.predlog.sinks`: the storage (a folder of Parquet parts, or PostgreSQL), shared
  by the writer and the readers (in the image);
- :mod:`~pipelines.predlog.readers`: one row per answered record, and outcomes, for the monitor
  and the canary decision (never in the image).

Nothing is imported here: the image carries the package without the readers.
"""

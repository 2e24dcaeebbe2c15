"""Online serving of the champion model: a lean ASGI app, a compiled scorer, and deployment.

The serving runtime (what the image carries, with ``pipelines/seams.py``):

* :mod:`pipelines.serve.app` - the ASGI app (/predict, /health, /ready, /version, /metrics)
* :mod:`pipelines.serve.batching` - the micro-batcher: one model call per event-loop turn
* :mod:`pipelines.serve.metrics` - Prometheus metrics (prometheus_client, a registry per app)
* :mod:`pipelines.serve.inputs` - the request contract: field checks, encoding, InputError
* :mod:`pipelines.serve.feedback` - which outcomes /feedback takes: recent answers only
* :mod:`pipelines.serve.fastpath` - the compiled scorer; :mod:`~pipelines.serve.preprocess`,
  :mod:`~pipelines.serve.trees` and :mod:`~pipelines.serve.internals` (what it reads from
  scikit-learn, checked)
* :mod:`pipelines.serve.model` - serving spec, model sources (registry alias, baked folder),
  the holder that swaps models in place

Deploy side (never in the image): :mod:`pipelines.release.deploy` (blue/green and local deploys,
checks, rollback), :mod:`pipelines.release.containers` (engine, image build, containers) and
:mod:`pipelines.release.nginx` (nginx, the stable address).

Nothing is imported here: the serving image carries this package without the pipeline's
heavier dependencies.
"""

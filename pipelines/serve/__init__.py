"""Online serving of the champion model: a lean ASGI app, a compiled scorer, and deployment.

* :mod:`pipelines.serve.fastpath` - the model compiled to precomputed numpy work, input checks
* :mod:`pipelines.serve.model` - serving spec, model sources (registry alias, baked folder),
  the holder that swaps models in place
* :mod:`pipelines.serve.app` - the ASGI app (/predict, /health, /ready, /version, /metrics)
* :mod:`pipelines.serve.deploy` - image build, blue/green switch behind nginx, local deploy

Nothing is imported here: the serving image carries this package without the pipeline's
heavier dependencies.
"""

"""The demo, apart from the product: what simulates data and users.

- :mod:`~pipelines.demo.simulate`: scenario batches (drift, a broken schema, a concept change)
  written to the landing folder, as if they had arrived;
- :mod:`~pipelines.demo.series`: a series of nights over those scenarios (``make run``);
- :mod:`~pipelines.demo.loop`: the live loop on this machine (``retrain demo-loop``): serving,
  traffic, late outcomes, the monitor, a night, a canary decision; its settings
  (:mod:`~pipelines.demo.settings`) in the workspace's params.yaml while it runs.

The product (``night``, ``monitor``, ``release``, ``serve``) never imports this package.
"""

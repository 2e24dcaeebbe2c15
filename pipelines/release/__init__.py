"""The release: what happens to a judged version, from the registry to traffic.

- :mod:`~pipelines.release.plan`: the policy, one pure function (promote, hold for approval,
  hold for a rollout, reject), read by everyone else;
- :mod:`~pipelines.release.register`: the ``register`` stage, which records the plan and acts on
  it in the registry;
- :mod:`~pipelines.release.approval`: the question to a human and the answer;
- :mod:`~pipelines.release.canary`: a canary or shadow beside the champion, decided on labelled
  live traffic;
- :mod:`~pipelines.release.deploy`: serving follows the champion (blue/green, containers).
"""

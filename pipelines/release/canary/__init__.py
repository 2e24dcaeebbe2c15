"""The canary: a gate-passed challenger beside the champion, decided on labelled live traffic.

``canary`` mode gives the challenger a share of the requests; ``shadow`` mode mirrors every
request to it and discards its answers. Serving routes by the registry (alias ``canary``, tags
``canary.mode`` / ``canary.share``) and logs each answer with its arm; outcomes fed back later
make the labelled rows this package judges.

Modules: :mod:`.decide` (the pure core: ``decide.decide`` returns a :class:`CanaryDecision`
from the labelled rows and ``params.deploy.canary``; the function is not re-exported here, so
``pipelines.release.canary.decide`` stays the module), :mod:`.sequential` (confidence
sequences: intervals valid at every monitor pass, ``deploy.canary.method: sequential``),
:mod:`.groups` (bootstrap intervals and influence values of the fairness stage's measures),
:mod:`.report` (the Markdown report and one-line summary) and :mod:`.control` (the edge:
registry alias and tags, the prediction log, reports and notifications; ``retrain canary``).
"""

from pipelines.release.canary.decide import Arm, CanaryDecision, compare_arms
from pipelines.release.canary.groups import FairnessChange
from pipelines.release.canary.report import render_markdown, summary_line

__all__ = [
    "Arm",
    "CanaryDecision",
    "FairnessChange",
    "compare_arms",
    "render_markdown",
    "summary_line",
]

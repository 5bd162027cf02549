"""The sync engine: keep an audience in step with a platform audience, in checkpointed batches of people.

Stages: ``run`` (claim, execute, errors), ``plan`` (who joins, changes, leaves; holds), ``send`` (the batches in
order), ``read`` (a batch's values, removals limited to identifiers no current member holds), ``checkpoint`` (what
the platform holds now), ``finish`` (the platform's figures, the end status). docs/sync.md tells the whole story.
"""

from syncs.engine.plan import Preview, preview
from syncs.engine.run import execute_run

__all__ = ["Preview", "execute_run", "preview"]

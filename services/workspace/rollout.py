"""The release policy of each vehicle group as the workspace shows it: the newest change per group.

The table is the compacted topic ``coc.policies.v1`` read whole at start and
followed live; validation reads the same topic and acts on it, with the same
table (``shared.policy_table``). A group with no change follows validation's
settings, which the page says rather than guesses.
"""

from __future__ import annotations

from shared.policy_table import PolicyTable

__all__ = ["PolicyTable"]

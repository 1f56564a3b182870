"""Compliance by jurisdiction (issue 16): pure domain core.

Public API (see each module for details):

* :func:`evaluate` ``(e164, at, batch_window, batch_timezone, table=CURRENT)``
  → :class:`Verdict` — allowed now?, next allowed instant, country, state,
  zones, every rule that applied (with source) and which ones blocked.
* :func:`subject_cap` ``(e164)`` → ``3`` for FL/OK/MD numbers, else ``None``.
* :data:`DEFAULT_ORGANIZATION_WINDOW` — 08:00–21:00 callee local, every day.
* :data:`CURRENT` / :class:`RuleTable` — the versioned rule table (data).
* :func:`resolve_region` ``(e164)`` → :class:`Region` (country, state).

Never imports infrastructure (sqlalchemy, redis, grpc).
"""

from server.domain.jurisdiction.evaluation import (
    BATCH_WINDOW_RULE_ID,
    DEFAULT_HORIZON_DAYS,
    DEFAULT_ORGANIZATION_WINDOW,
    AppliedRule,
    Verdict,
    evaluate,
    subject_cap,
    subject_cap_rules,
)
from server.domain.jurisdiction.regions import Region, resolve_region
from server.domain.jurisdiction.rules import (
    CURRENT,
    TABLE_VERSION,
    JurisdictionRule,
    RuleKind,
    RuleTable,
)

__all__ = [
    "BATCH_WINDOW_RULE_ID",
    "CURRENT",
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_ORGANIZATION_WINDOW",
    "TABLE_VERSION",
    "AppliedRule",
    "JurisdictionRule",
    "Region",
    "RuleKind",
    "RuleTable",
    "Verdict",
    "evaluate",
    "resolve_region",
    "subject_cap",
    "subject_cap_rules",
]

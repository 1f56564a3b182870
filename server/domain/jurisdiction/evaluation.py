"""May this number be called at this instant, under every applicable rule?

``evaluate(e164, at, batch_window, batch_timezone)`` combines, on the
callee's local clock and local date, in **every** time zone the number may
ring in:

* the federal rules (table rows for ``"US"``) for US numbers and territories,
* the rules of the state presumed from the area code (``"US-FL"`` ...),
* the rules the table has for a non-US country (``"CA"`` ...),
* the batch's own :class:`CallingWindow` (``None`` = no batch window).

The strictest wins: on local date *d* the allowed interval is the
intersection of every HOURS row whose weekdays include *d*, the batch window
(if *d* is one of its weekdays, else closed), and nothing at all if *d* is a
Sunday under a NO_SUNDAY row or a holiday under a NO_HOLIDAY row.

``next_allowed`` is found by testing only candidate instants — each local
date's interval start in each zone (both folds) and each zone's UTC-offset
changes — because the allowed set is a finite union of left-closed intervals
per zone, so its first point after ``at`` is ``at`` itself or one of those
edges (same argument as :func:`server.domain.calling_window.next_open_until`).
Local midnight is an interval start whenever an interval starts at 00:00.

Non-US numbers whose zones never share an opening fall back to the batch's
zone, as :func:`server.domain.calling_window.resolve_zones` does today; US
numbers never fall back (that would risk calling outside a statute's hours).

Pure: no I/O, the instant is a parameter; per-number region, zones and
holiday sets are cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.calling_window import (
    END_OF_DAY,
    CallingWindow,
    _offset_transitions,
    _zone,
    zones_for_number,
)
from server.domain.clock import ensure_aware_utc
from server.domain.jurisdiction.holidays_cache import holiday_name
from server.domain.jurisdiction.regions import Region, resolve_region
from server.domain.jurisdiction.rules import (
    CURRENT,
    JurisdictionRule,
    RuleKind,
    RuleTable,
)

__all__ = [
    "BATCH_WINDOW_RULE_ID",
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_ORGANIZATION_WINDOW",
    "AppliedRule",
    "Verdict",
    "evaluate",
    "subject_cap",
]

#: Safe default for a new organization: 08:00–21:00 callee local time, every
#: day (the federal window). Calling at any time must be an explicit choice.
DEFAULT_ORGANIZATION_WINDOW = CallingWindow(time(8, 0), time(21, 0))
DEFAULT_HORIZON_DAYS = 14
#: Rule id under which the batch's own window appears in a :class:`Verdict`.
BATCH_WINDOW_RULE_ID = "batch.window"


@dataclass(frozen=True)
class AppliedRule:
    """A rule that applied to the number, as shown by the explain API."""

    rule_id: str
    jurisdiction: str  # "US", "US-FL", "CA", or "batch"
    kind: str  # "hours" | "no_sunday" | "no_holiday" | "subject_cap" | "batch_window"
    description: str
    source: str
    checked: date | None
    verified: bool

    @classmethod
    def from_rule(cls, r: JurisdictionRule) -> AppliedRule:
        return cls(r.rule_id, r.jurisdiction, r.kind.value, r.description, r.source, r.checked, r.verified)


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`evaluate`.

    ``allowed`` — a call may start at ``at``. ``next_allowed`` — ``at`` when
    allowed, else the earliest later instant (UTC) at which it is, or
    ``None`` if there is none within the horizon. ``rules`` lists every rule
    that applied to this number (table rows for its country and state, the
    batch window, and per-subject caps, which are enforced by the caller via
    :func:`subject_cap`). ``blocked_by`` names the rule ids that forbid a
    call at ``at`` (empty when allowed); ``reason`` says the same in words,
    with the zone and local time.
    """

    allowed: bool
    at: datetime
    next_allowed: datetime | None
    country: str
    state: str
    zones: tuple[str, ...]
    zones_fallback: bool
    rules: tuple[AppliedRule, ...]
    blocked_by: tuple[str, ...]
    reason: str
    table_version: str

    def to_dict(self) -> dict:
        """Plain-JSON form for the explain RPC / UI (ISO 8601 instants)."""
        return {
            "allowed": self.allowed,
            "at": self.at.isoformat(),
            "next_allowed": self.next_allowed.isoformat() if self.next_allowed else None,
            "country": self.country,
            "state": self.state,
            "zones": list(self.zones),
            "zones_fallback": self.zones_fallback,
            "rules": [
                {
                    "rule_id": r.rule_id,
                    "jurisdiction": r.jurisdiction,
                    "kind": r.kind,
                    "description": r.description,
                    "source": r.source,
                    "checked": r.checked.isoformat() if r.checked else None,
                    "verified": r.verified,
                }
                for r in self.rules
            ],
            "blocked_by": list(self.blocked_by),
            "reason": self.reason,
            "table_version": self.table_version,
        }


# --------------------------------------------------------------------------
# The combined daily policy
# --------------------------------------------------------------------------


class _Policy:
    """Allowed local interval per local date, from table rows + batch window."""

    def __init__(self, region: Region, rules: Sequence[JurisdictionRule], batch: CallingWindow | None):
        self.region = region
        self.hours = [r for r in rules if r.kind is RuleKind.HOURS]
        self.sunday = [r for r in rules if r.kind is RuleKind.NO_SUNDAY]
        self.holiday = [r for r in rules if r.kind is RuleKind.NO_HOLIDAY]
        self.batch = batch
        self._cache: dict[date, tuple[time, time] | None] = {}

    def _holiday(self, rule: JurisdictionRule, d: date) -> str:
        return holiday_name(rule.country, rule.subdivision, d)

    def interval(self, d: date) -> tuple[time, time] | None:
        """``(start, end)`` allowed on local date ``d`` (end exclusive), or None."""
        if d in self._cache:
            return self._cache[d]
        wd = d.isoweekday()
        lo, hi = time.min, END_OF_DAY
        result: tuple[time, time] | None
        closed = (wd == 7 and bool(self.sunday)) or any(self._holiday(r, d) for r in self.holiday)
        if self.batch is not None:
            if wd not in self.batch.weekdays:
                closed = True
            else:
                lo, hi = max(lo, self.batch.start), min(hi, self.batch.end)
        for r in self.hours:
            if wd in r.weekdays:
                lo, hi = max(lo, r.start), min(hi, r.end)
        result = None if closed or not lo < hi else (lo, hi)
        self._cache[d] = result
        return result

    def contains(self, local: datetime) -> bool:
        iv = self.interval(local.date())
        if iv is None:
            return False
        t = local.replace(tzinfo=None, fold=0).time()
        return iv[0] <= t and (t < iv[1] or iv[1] == END_OF_DAY)

    def blockers(self, local: datetime) -> list[tuple[str, str]]:
        """(rule id, why) for every rule that forbids a call at this local reading."""
        d, t, wd = local.date(), local.time(), local.isoweekday()
        out: list[tuple[str, str]] = []
        for r in self.sunday:
            if wd == 7:
                out.append((r.rule_id, "Sunday"))
        for r in self.holiday:
            name = self._holiday(r, d)
            if name:
                out.append((r.rule_id, f"holiday: {name}"))
        if self.batch is not None and not self.batch.contains_local(local.replace(tzinfo=None)):
            out.append((BATCH_WINDOW_RULE_ID, f"outside batch window {self.batch}"))
        for r in self.hours:
            if wd in r.weekdays and not (r.start <= t < r.end):
                out.append((r.rule_id, f"outside {r.start:%H:%M}–{r.end:%H:%M}"))
        return out


def _allowed(policy: _Policy, zones: Sequence[ZoneInfo], u: datetime) -> bool:
    return all(policy.contains(u.astimezone(z)) for z in zones)


def _local_dates(z: ZoneInfo, lo: datetime, hi: datetime) -> Iterable[date]:
    first = lo.astimezone(z).date() - timedelta(days=1)
    last = hi.astimezone(z).date() + timedelta(days=1)
    for i in range((last - first).days + 1):
        yield first + timedelta(days=i)


def _next_allowed(policy: _Policy, zones: Sequence[ZoneInfo], at: datetime, until: datetime) -> datetime | None:
    if _allowed(policy, zones, at):
        return at
    candidates: set[datetime] = set()
    for z in zones:
        for d in _local_dates(z, at, until):
            iv = policy.interval(d)
            if iv is None:
                continue
            naive = datetime.combine(d, iv[0])
            for fold in (0, 1):
                candidates.add(naive.replace(tzinfo=z, fold=fold).astimezone(UTC))
        candidates.update(_offset_transitions(z, at, until))
    for c in sorted(c for c in candidates if at < c < until):
        if _allowed(policy, zones, c):
            return c
    return None


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def evaluate(
    e164: str,
    at: datetime,
    batch_window: CallingWindow | None,
    batch_timezone: str,
    table: RuleTable = CURRENT,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> Verdict:
    """Whether a call to ``e164`` may start at ``at``, and when it next may.

    ``batch_window`` is the batch's (or organization's) window, ``None`` for
    "no window of our own" (only jurisdiction rules then). ``batch_timezone``
    is used when the number's zone is unknown (toll-free, unparseable).
    Raises ``ValueError`` for a naive ``at`` or an unknown ``batch_timezone``.
    """
    at = ensure_aware_utc(at, "at")
    if horizon_days < 0:
        raise ValueError(f"horizon_days must not be negative, got {horizon_days}")
    until = at + timedelta(days=horizon_days)
    region = resolve_region(e164)
    rows = table.for_jurisdictions(region.jurisdictions)
    policy = _Policy(region, rows, batch_window)

    found = zones_for_number(e164, batch_timezone)
    zone_names, fallback = found.zones, found.fallback
    zones = [_zone(z) for z in zone_names]
    nxt = _next_allowed(policy, zones, at, until)
    if nxt is None and not fallback and region.country != "US":
        # Today's behaviour for numbers spread over zones that never share an
        # opening (e.g. all of Russia): the batch's zone stands in.
        zone_names, fallback = (batch_timezone,), True
        zones = [_zone(batch_timezone)]
        nxt = _next_allowed(policy, zones, at, until)

    allowed = nxt == at
    blocked: list[str] = []
    reasons: list[str] = []
    if not allowed:
        for name, z in zip(zone_names, zones):
            local = at.astimezone(z)
            for rule_id, why in policy.blockers(local):
                if rule_id not in blocked:
                    blocked.append(rule_id)
                reasons.append(f"{rule_id} ({why}; {local:%a %Y-%m-%d %H:%M} {name})")
    if allowed:
        reason = ""
    elif reasons:
        reason = "; ".join(reasons)
    else:  # every zone open separately is impossible here; keep a message anyway
        reason = "no instant open in all of the number's zones"
    if not allowed and nxt is None:
        reason += f"; no opening within {horizon_days} days"

    applied = [AppliedRule.from_rule(r) for r in rows]
    if batch_window is not None:
        applied.append(
            AppliedRule(
                BATCH_WINDOW_RULE_ID, "batch", "batch_window",
                f"batch window {batch_window} in the callee's time zone(s)", "batch/organization setting",
                None, True,
            )
        )
    return Verdict(
        allowed=allowed,
        at=at,
        next_allowed=nxt,
        country=region.country,
        state=region.state,
        zones=tuple(zone_names),
        zones_fallback=fallback,
        rules=tuple(applied),
        blocked_by=tuple(blocked),
        reason=reason,
        table_version=table.version,
    )


def subject_cap(e164: str, table: RuleTable = CURRENT) -> int | None:
    """Calls allowed per rolling 24 h about one subject to this number, or None.

    3 for numbers presumed in Florida, Oklahoma and Maryland; ``None`` where
    the table has no cap. (All caps in the table are per 24 h; if a row with
    another window is ever added, use :func:`subject_cap_rules`.)
    """
    caps = [r.max_calls for r in subject_cap_rules(e164, table) if r.max_calls is not None]
    return min(caps) if caps else None


def subject_cap_rules(e164: str, table: RuleTable = CURRENT) -> tuple[JurisdictionRule, ...]:
    """The SUBJECT_CAP rows that apply to this number (with window and source)."""
    region = resolve_region(e164)
    return tuple(r for r in table.for_jurisdictions(region.jurisdictions) if r.kind is RuleKind.SUBJECT_CAP)

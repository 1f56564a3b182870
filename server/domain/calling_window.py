"""Calling hours in the *called party's* local time.

US TCPA-style rules (no calls before 8 am or after 9 pm) are about the clock on
the callee's wall, not the operator's or the server's. So every contact gets
the time zone(s) its number belongs to, and a call may start only at an
instant when the window is open in **all** of them: a number that
``phonenumbers`` can only place in "somewhere in Australia" must be called
when it is a decent hour everywhere it might ring.

Decisions written down here:

* Windows are same-day: ``start < end``, ``end`` exclusive. Overnight windows
  (22:00–06:00) are rejected with ``ValueError`` — nobody should be running
  outbound campaigns overnight, and it keeps "which date's weekday counts"
  unambiguous. ``"24:00"`` is accepted as an end meaning "until midnight".
* "Open" is defined on the wall clock: at instant *u* the window is open in
  zone *z* iff the local date of *u* in *z* is an allowed ISO weekday and the
  local time-of-day is in ``[start, end)``. DST therefore behaves the way a
  person would expect: on a spring-forward day a window starting inside the
  skipped hour opens at the first instant after the jump; on a fall-back day a
  window covering the repeated hour is open during both passes.
* Service numbers (toll-free, premium rate, shared cost, UAN) say nothing about
  where the callee sits — ``+1 800`` maps to every NANP zone from Guam to
  St. John's — so they are treated like numbers of unknown zone and use the
  batch's time zone (``fallback=True``). The same happens when the number's
  zones never share an open instant (``resolve_zones``).

All functions are pure; the instant is always a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from server.domain.clock import ensure_aware_utc

__all__ = [
    "END_OF_DAY",
    "CallingWindow",
    "CalleeZones",
    "zones_for_number",
    "is_open",
    "next_open",
    "next_open_until",
    "resolve_zones",
    "validate_timezone",
]

#: ``end`` value meaning "until local midnight" (parsed from ``"24:00"``).
END_OF_DAY = time.max

_ALL_WEEKDAYS: frozenset[int] = frozenset(range(1, 8))
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$", re.ASCII)  # ASCII digits only
_UNKNOWN_ZONE = pn_timezone.UNKNOWN_TIMEZONE  # "Etc/Unknown"
# Numbers whose digits name a service, not a place (see module docstring).
_NON_GEOGRAPHIC_TYPES = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
    }
)
# Offset changes (DST, zone rule changes) are searched for in steps this long;
# real zones never change offset twice within six hours.
_TRANSITION_SCAN_STEP = 6 * 3600


# --------------------------------------------------------------------------
# Window definition
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CallingWindow:
    """Allowed local hours ``[start, end)`` on the given ISO weekdays (1=Mon..7=Sun)."""

    start: time
    end: time
    weekdays: frozenset[int] = field(default=_ALL_WEEKDAYS)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("calling window times are local wall-clock times; pass naive times")
        if not self.start < self.end:
            raise ValueError(
                f"calling window must start before it ends on the same day "
                f"(got {_fmt(self.start)}–{_fmt(self.end)}); overnight windows are not supported"
            )
        days = frozenset(self.weekdays)
        if not days:
            raise ValueError("calling window needs at least one weekday")
        bad = sorted(d for d in days if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7)
        if bad:
            raise ValueError(f"weekdays must be ISO numbers 1 (Monday) to 7 (Sunday), got {bad}")
        object.__setattr__(self, "weekdays", days)

    @classmethod
    def parse(cls, start: str, end: str, weekdays: Iterable[int] = ()) -> "CallingWindow":
        """Build a window from ``"HH:MM"`` strings; empty ``weekdays`` means every day.

        Raises ``ValueError`` with a message an operator can act on.
        """
        start_t = _parse_hhmm(start, "start", allow_24=False)
        end_t = _parse_hhmm(end, "end", allow_24=True)
        days = frozenset(weekdays) or _ALL_WEEKDAYS
        return cls(start_t, end_t, days)

    @property
    def start_text(self) -> str:
        """``start`` as ``"HH:MM"``, the form :meth:`parse` reads back."""
        return _fmt(self.start)

    @property
    def end_text(self) -> str:
        """``end`` as ``"HH:MM"``; ``"24:00"`` for :data:`END_OF_DAY`.

        Use this rather than ``end.strftime`` when storing a window:
        ``time.max.strftime("%H:%M")`` is ``"23:59"`` and would shorten the window.
        """
        return _fmt(self.end)

    def contains_local(self, local: datetime) -> bool:
        """True when a local wall-clock reading falls inside the window."""
        if local.isoweekday() not in self.weekdays:
            return False
        t = local.time()
        return self.start <= t and (t < self.end or self.end == END_OF_DAY)

    def __str__(self) -> str:
        days = "every day" if self.weekdays == _ALL_WEEKDAYS else "days " + ",".join(
            str(d) for d in sorted(self.weekdays)
        )
        return f"{_fmt(self.start)}–{_fmt(self.end)} {days}"


def _parse_hhmm(value: str, what: str, *, allow_24: bool) -> time:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"calling window {what} must look like HH:MM (e.g. 08:00), got {value!r}")
    hh, mm = int(m.group(1)), int(m.group(2))
    if allow_24 and hh == 24 and mm == 0:
        return END_OF_DAY
    if not (0 <= hh <= 23 and 0 <= mm <= 59):
        limit = "00:00–24:00" if allow_24 else "00:00–23:59"
        raise ValueError(f"calling window {what} {value!r} is not a time of day ({limit})")
    return time(hh, mm)


def _fmt(t: time) -> str:
    return "24:00" if t == END_OF_DAY else t.strftime("%H:%M")


# --------------------------------------------------------------------------
# Which zones a number rings in
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CalleeZones:
    """IANA zones whose local time governs a contact's calling window.

    ``fallback`` is True when the batch's time zone stands in, because the
    number's zone is unknown / non-geographic or its zones never share an
    open instant.
    """

    zones: tuple[str, ...]
    fallback: bool


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is a known IANA zone, else raise a readable ``ValueError``."""
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'America/New_York'") from None
    return name


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _is_known_zone(name: str) -> bool:
    try:
        validate_timezone(name)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=65536)
def _number_zones(e164: str) -> tuple[str, ...]:
    """Zones of a number, or ``()`` when it cannot be placed on a map."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    if phonenumbers.number_type(number) in _NON_GEOGRAPHIC_TYPES:
        return ()
    names = pn_timezone.time_zones_for_number(number)
    return tuple(sorted({n for n in names if n and n != _UNKNOWN_ZONE and _is_known_zone(n)}))


def zones_for_number(e164: str, batch_timezone: str) -> CalleeZones:
    """The zones a number may ring in, or the batch zone when that is unknown."""
    validate_timezone(batch_timezone)
    zones = _number_zones(e164)
    if not zones:
        return CalleeZones((batch_timezone,), True)
    return CalleeZones(zones, False)


def resolve_zones(e164: str, window: CallingWindow, batch_timezone: str, at: datetime) -> CalleeZones:
    """Zones to enforce for a contact, falling back when they cannot all be open at once.

    A number spread over zones more than ~11 hours apart (with an 8–21 window)
    would otherwise be undialable forever; the batch zone is the operator's
    stated intent and the best remaining guess.
    """
    found = zones_for_number(e164, batch_timezone)
    if found.fallback or next_open(window, found.zones, at, horizon_days=7) is not None:
        return found
    return CalleeZones((batch_timezone,), True)


# --------------------------------------------------------------------------
# Open / next open
# --------------------------------------------------------------------------


def is_open(window: CallingWindow, zones: Sequence[str], at: datetime) -> bool:
    """True when the window is open in every zone at the instant ``at``."""
    at = ensure_aware_utc(at, "at")
    return all(window.contains_local(at.astimezone(z)) for z in _zones(zones))


def next_open(
    window: CallingWindow, zones: Sequence[str], at: datetime, horizon_days: int = 14
) -> datetime | None:
    """Earliest instant ``r >= at`` with ``is_open(window, zones, r)``, in UTC.

    ``None`` when there is none before ``at + horizon_days``. Exact to the
    second (window boundaries and DST transitions fall on whole seconds).
    """
    if horizon_days < 0:
        raise ValueError(f"horizon_days must not be negative, got {horizon_days}")
    at = ensure_aware_utc(at, "at")
    return next_open_until(window, zones, at, at + timedelta(days=horizon_days))


def next_open_until(
    window: CallingWindow, zones: Sequence[str], at: datetime, until: datetime
) -> datetime | None:
    """Like :func:`next_open` with an explicit exclusive end instant ``until``.

    Why this is exact without scanning minute by minute: each zone's open set
    is a union of intervals closed on the left, so the intersection's first
    open instant after ``at`` is ``at`` itself or the left edge of some zone's
    interval. A zone's interval can only begin when its wall clock reaches
    ``start`` (one or two instants per local date, two in a DST fold) or when
    its offset changes and the wall clock jumps into the window. Those
    instants are the only candidates to test.
    """
    at = ensure_aware_utc(at, "at")
    until = ensure_aware_utc(until, "until")
    tzs = _zones(zones)
    if at >= until:
        return None
    if is_open(window, zones, at):
        return at
    candidates: set[datetime] = set()
    for z in tzs:
        candidates.update(_start_instants(window, z, at, until))
        candidates.update(_offset_transitions(z, at, until))
    for c in sorted(c for c in candidates if at < c < until):
        if all(window.contains_local(c.astimezone(z)) for z in tzs):
            return c
    return None


def _zones(zones: Sequence[str]) -> list[ZoneInfo]:
    if isinstance(zones, str):
        raise TypeError("zones must be a sequence of zone names, not a single string")
    if not zones:
        raise ValueError("at least one time zone is needed to check a calling window")
    return [_zone(validate_timezone(z)) for z in zones]


def _local_dates(z: ZoneInfo, lo: datetime, hi: datetime) -> Iterable[date]:
    """Every local date in ``z`` that overlaps ``[lo, hi)``, with a day of margin."""
    first = lo.astimezone(z).date() - timedelta(days=1)
    last = hi.astimezone(z).date() + timedelta(days=1)
    for i in range((last - first).days + 1):
        yield first + timedelta(days=i)


def _start_instants(window: CallingWindow, z: ZoneInfo, lo: datetime, hi: datetime) -> set[datetime]:
    """Instants when the wall clock in ``z`` reads ``window.start`` on an allowed day."""
    out: set[datetime] = set()
    for d in _local_dates(z, lo, hi):
        if d.isoweekday() not in window.weekdays:
            continue
        naive = datetime.combine(d, window.start)
        for fold in (0, 1):
            out.add(naive.replace(tzinfo=z, fold=fold).astimezone(timezone.utc))
    return out


def _offset_transitions(z: ZoneInfo, lo: datetime, hi: datetime) -> list[datetime]:
    """Instants in ``[lo - 1 day, hi + 1 day]`` at which ``z`` changes its UTC offset."""
    day = 86400
    first_day = int(lo.timestamp()) // day - 1
    last_day = int(hi.timestamp()) // day + 1
    out: list[datetime] = []
    for d in range(first_day, last_day + 1):
        out.extend(_transitions_on_utc_day(z.key, d))
    return out


@lru_cache(maxsize=65536)
def _transitions_on_utc_day(zone_name: str, day_number: int) -> tuple[datetime, ...]:
    """Offset changes of a zone during one UTC day (``day_number`` days after the epoch)."""
    z = _zone(zone_name)
    start = day_number * 86400
    found: list[datetime] = []
    for step_start in range(start, start + 86400, _TRANSITION_SCAN_STEP):
        step_end = step_start + _TRANSITION_SCAN_STEP
        if _offset_at(z, step_start) != _offset_at(z, step_end):
            found.append(_first_second_with_offset(z, step_start, step_end))
    return tuple(found)


def _offset_at(z: ZoneInfo, ts: int) -> timedelta | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone(z).utcoffset()


def _first_second_with_offset(z: ZoneInfo, lo: int, hi: int) -> datetime:
    """Binary search for the first second in ``(lo, hi]`` whose offset equals ``hi``'s."""
    target = _offset_at(z, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(z, mid) == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, tz=timezone.utc)

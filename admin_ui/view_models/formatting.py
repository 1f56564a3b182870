"""Money, timestamp and duration formatting shared by every page.

Money travels as integer micros of a US dollar in the API (no float
rounding on the server); timestamps as protobuf Timestamps, unset when zero.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from batchcalls.v1 import batch_pb2

# --- money -----------------------------------------------------------------------

MICROS_PER_USD = 1_000_000


def format_money(micros: int | None) -> str:
    if micros is None:
        return "—"
    sign = "-" if micros < 0 else ""
    usd = abs(micros) / MICROS_PER_USD
    if 0 < usd < 0.01:
        return f"{sign}${usd:.4f}"
    return f"{sign}${usd:,.2f}"


_MONEY_RE = re.compile(r"^\$?\s*(\d{1,12})(?:\.(\d{1,6}))?$")


def parse_money_to_micros(text: str) -> int:
    """"12.5" / "$12.50" → 12_500_000. Raises ValueError on anything else."""
    m = _MONEY_RE.match((text or "").strip().replace(",", ""))
    if not m:
        raise ValueError("Enter an amount in US dollars, for example 25 or 12.50")
    whole, frac = m.group(1), (m.group(2) or "")
    return int(whole) * MICROS_PER_USD + int(frac.ljust(6, "0"))


def cost_estimate_text(est: batch_pb2.CostEstimate) -> str:
    minutes = est.assumed_minutes_per_call or 3.0
    return (
        f"{est.contacts:,} contacts × {minutes:g} min × "
        f"{format_money(est.rate_micros_per_minute)}/min ≈ {format_money(est.estimated_cost_micros)}"
    )


# --- time ----------------------------------------------------------------------------

UTC = dt.timezone.utc


def ts_to_dt(msg: Any, field_name: str) -> dt.datetime | None:
    """The datetime (UTC, aware) of a Timestamp field, or None when unset."""
    try:
        if not msg.HasField(field_name):
            return None
    except ValueError:
        return None
    ts = getattr(msg, field_name)
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def format_dt(value: dt.datetime | None, tz: str = "UTC", empty: str = "—") -> str:
    if value is None:
        return empty
    try:
        zone = ZoneInfo(tz)
    except Exception:
        zone = ZoneInfo("UTC")
    local = value.astimezone(zone)
    # "Jan 15, 2024 10:30 AM" as in the seed's details card.
    text = local.strftime("%b %d, %Y %I:%M %p")
    text = re.sub(r" 0(\d):", r" \1:", text)
    return f"{text} {tz}" if tz and tz != "UTC" else f"{text} UTC"


def format_ts(msg: Any, field_name: str, tz: str = "UTC", empty: str = "—") -> str:
    return format_dt(ts_to_dt(msg, field_name), tz, empty)


def format_duration(seconds: float | None, empty: str = "—") -> str:
    if seconds is None or seconds <= 0:
        return empty
    total = int(round(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def format_rate(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def ratio(part: int, whole: int) -> float:
    return (part / whole) if whole else 0.0

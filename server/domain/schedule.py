"""Scheduled starts: an absolute instant, or a wall-clock time in an IANA
timezone that the system converts to UTC (the seed's calendar + timezone)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain.errors import FieldViolation, InvalidArgument

TIMEZONE_MAX = 64


def parse_timezone(tz: str, field: str = "timezone") -> ZoneInfo:
    name = tz or "UTC"
    if len(name) > TIMEZONE_MAX or ".." in name or name.startswith("/"):
        raise InvalidArgument(FieldViolation(field, "not an IANA timezone such as America/New_York"))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            FieldViolation(field, f"unknown IANA timezone {name!r}; use a name such as America/New_York")
        ) from None


def resolve_schedule(
    instant: datetime | None, local_time: str, tz: str, now: datetime, *, required: bool = False
) -> tuple[datetime | None, str]:
    """Returns (UTC instant or None for an immediate start, timezone name)."""
    zone = parse_timezone(tz)
    tz_name = tz or "UTC"
    if instant is not None and local_time:
        raise InvalidArgument(
            FieldViolation("scheduled_local_time", "give scheduled_start_time or scheduled_local_time, not both")
        )
    if local_time:
        if len(local_time) > 40:
            raise InvalidArgument(FieldViolation("scheduled_local_time", "too long"))
        try:
            parsed = datetime.fromisoformat(local_time)
        except ValueError:
            raise InvalidArgument(
                FieldViolation("scheduled_local_time", "ISO 8601 local time such as 2024-01-20T14:00:00")
            ) from None
        if parsed.tzinfo is not None:
            raise InvalidArgument(
                FieldViolation("scheduled_local_time", "give it without offset; the timezone field says where")
            )
        instant = parsed.replace(tzinfo=zone).astimezone(timezone.utc)
        field = "scheduled_local_time"
    else:
        field = "scheduled_start_time"
    if instant is None:
        if required:
            raise InvalidArgument(FieldViolation("scheduled_start_time", "required: the new start time"))
        return None, tz_name
    if instant <= now:
        raise InvalidArgument(FieldViolation(field, "must be in the future"))
    if instant.year > now.year + 2:
        raise InvalidArgument(FieldViolation(field, "must be within two years"))
    return instant.astimezone(timezone.utc), tz_name

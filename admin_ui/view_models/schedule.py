"""Start times and calling windows: the wall-clock forms the API takes
("YYYY-MM-DDTHH:MM:00" in the batch's time zone, "HH:MM" window bounds,
ISO weekday numbers) and their readable text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from admin_ui.view_models.formatting import UTC
from batchcalls.v1 import batch_pb2, resources_pb2


@lru_cache(maxsize=1)
def timezone_options() -> list[str]:
    """IANA zones, UTC first."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return ["UTC", *zones]


def scheduled_local_time(date: dt.date, time: dt.time) -> str:
    """The API's wall-clock form, "YYYY-MM-DDTHH:MM:00"."""
    return f"{date.isoformat()}T{time.hour:02d}:{time.minute:02d}:00"


def schedule_instant(date: dt.date, time: dt.time, tz: str) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(time.hour, time.minute), tzinfo=ZoneInfo(tz))


def schedule_is_future(date: dt.date, time: dt.time, tz: str, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(UTC)
    return schedule_instant(date, time, tz) > now


def hhmm(text: str) -> str | None:
    """Normalise "9:00" → "09:00"; None when not a valid 24 h time."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not m:
        return None
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 24 or mi > 59 or (h == 24 and mi != 0):
        return None
    return f"{h:02d}:{mi:02d}"


WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def weekday_numbers(names: Iterable[str]) -> list[int]:
    return sorted(WEEKDAY_NAMES.index(n) + 1 for n in names)


def weekday_names(numbers: Iterable[int]) -> list[str]:
    return [WEEKDAY_NAMES[n - 1] for n in sorted(numbers) if 1 <= n <= 7]


def calling_window_text(window: resources_pb2.CallingWindow | None) -> str:
    if window is None or not (window.start_local_time or window.end_local_time):
        return "Any time"
    days = ", ".join(weekday_names(window.weekdays)) if window.weekdays else "every day"
    return f"{window.start_local_time}–{window.end_local_time} callee's local time, {days}"


def calling_window_mode_text(batch: batch_pb2.Batch) -> str:
    mode = {
        resources_pb2.CALLING_WINDOW_MODE_UNSPECIFIED: "Organization default",
        resources_pb2.CALLING_WINDOW_MODE_NONE: "None",
        resources_pb2.CALLING_WINDOW_MODE_CUSTOM: "Custom",
    }.get(batch.calling_window_mode, "?")
    window = batch.calling_window if batch.HasField("calling_window") else None
    return f"{mode}: {calling_window_text(window)}"

"""Prior express consent from an uploaded CSV (issue 16, item 5).

An organization with ``require_consent`` needs a ``consent_at`` column
(header matched case-insensitively, like every custom column), optionally
``consent_source``. Accepted ``consent_at`` values, ISO 8601:

* a date, ``2025-01-31`` (taken as 00:00 UTC that day);
* a date-time, ``2025-01-31T14:05``, ``2025-01-31 14:05:09``, with an offset
  (``+02:00``) or ``Z``; without one it is UTC.

A row without valid consent (empty, unparseable, or later than the upload
instant plus a day of clock skew) is suppressed with the reason. Consent
columns stay among the contact's variables too (as uploaded). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from server.domain.csv_ingest.types import CsvRejected

__all__ = ["CONSENT_AT", "CONSENT_SOURCE", "Consent", "consent_of_rows", "parse_consent_at"]

CONSENT_AT = "consent_at"
CONSENT_SOURCE = "consent_source"
SOURCE_MAX = 200
_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class Consent:
    at: datetime
    source: str


def parse_consent_at(value: str, now: datetime) -> datetime | str:
    """The consent instant (UTC), or the reason it is not valid consent."""
    text = value.strip()
    if not text:
        return "no consent: consent_at is empty"
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0), UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        return "no consent: consent_at is not an ISO 8601 date or date-time (2025-01-31, 2025-01-31T14:05Z)"
    if parsed > now + _SKEW:
        return "no consent: consent_at is in the future"
    return parsed


def _column(columns: list[str], wanted: str) -> str | None:
    return next((c for c in columns if c.strip().lower() == wanted), None)


def consent_of_rows(
    report: object, now: datetime, *, required: bool
) -> tuple[dict[int, Consent], dict[int, str]]:
    """(row number -> consent, row number -> reason it is missing/invalid).

    ``required``: a file without a consent_at column is rejected
    (MISSING_CONSENT_COLUMN) and rows without valid consent are listed with
    the reason. Not required: valid consent is kept, the rest ignored.
    """
    columns = list(getattr(report, "custom_columns"))
    at_col = _column(columns, CONSENT_AT)
    if at_col is None:
        if required:
            raise CsvRejected(
                "MISSING_CONSENT_COLUMN",
                "this organization requires prior express consent: add a consent_at column "
                "(ISO 8601 date or date-time) and optionally consent_source",
            )
        return {}, {}
    src_col = _column(columns, CONSENT_SOURCE)
    kept: dict[int, Consent] = {}
    missing: dict[int, str] = {}
    for c in getattr(report, "contacts"):
        got = parse_consent_at(c.variables.get(at_col, ""), now)
        if isinstance(got, str):
            if required:
                missing[c.row_number] = got
            continue
        source = c.variables.get(src_col, "").strip()[:SOURCE_MAX] if src_col else ""
        kept[c.row_number] = Consent(got, source)
    return kept, missing

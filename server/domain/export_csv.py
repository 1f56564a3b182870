"""CSV export of a batch's contacts (pure, no I/O).

Columns, in order (the seed's "Export Batch" list):

    name, phone, status, attempts, duration_seconds, failure_reason,
    call_timestamp, <custom variables...>, disposition, answered_by, summary,
    <extracted fields...>

``disposition``, ``answered_by`` and ``summary`` are the contact's latest
result reported by the agent (ResultsService; empty when none). Then one
column per extracted field name seen in the batch (the caller passes them,
sorted); a name that collides with an earlier column is written as
``field_<name>``.

Custom variables follow, each column named as in the uploaded CSV, in the
order given by the caller (upload order). A custom column whose name equals
one of the fixed columns (case-insensitively) is written as ``var_<name>``
so every header is distinct.

Formats:

* UTF-8, no BOM (pass ``bom=True`` for Excel on Windows), RFC 4180 quoting
  via the ``csv`` module, CRLF line ends, header row first.
* ``duration_seconds``: connected seconds, integers without decimals
  (``42``), otherwise up to three decimals (``42.5``).
* ``call_timestamp``: ISO 8601 UTC with a ``Z``, whole seconds
  (``2024-01-15T10:31:00Z``); empty when the contact was never called.
  Naive datetimes are taken as UTC.

Formula injection: every cell (header included) that starts with ``=``,
``+``, ``-``, ``@``, tab, carriage return or line feed (or the full-width
``＝ ＋ － ＠``) gets a leading apostrophe, so a spreadsheet shows text instead
of evaluating it. The one exception is a cell that is exactly ``+`` followed
by ASCII digits and nothing else, such as an E.164 phone number: no
spreadsheet evaluates it as a formula, so ``+14155552671`` is exported as
is and re-imports into a CRM unchanged. ``+1+1``, ``+ 123``, ``+123e4``,
``+cmd|...``, ``-1`` and ``@SUM(A1)`` are all still neutralised.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from server.domain.contact_rules import FINAL_FAILURES, ContactStatus

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_FILTERS",
    "FAILED_STATUSES",
    "SUCCESSFUL_STATUSES",
    "ExportRow",
    "csv_chunks",
    "export_header",
    "format_timestamp",
    "neutralize_cell",
    "row_matches_filter",
]

EXPORT_COLUMNS: list[str] = [
    "name",
    "phone",
    "status",
    "attempts",
    "duration_seconds",
    "failure_reason",
    "call_timestamp",
]
#: The agent's result (after the custom variables, before the extracted fields).
RESULT_COLUMNS: list[str] = ["disposition", "answered_by", "summary"]

SUCCESSFUL_STATUSES = frozenset({ContactStatus.COMPLETED.value})
FAILED_STATUSES = frozenset(s.value for s in FINAL_FAILURES)
EXPORT_FILTERS = ("all", "successful", "failed")

# Characters a spreadsheet may treat as the start of a formula (OWASP "CSV
# injection"), with the full-width forms some spreadsheets fold to ASCII.
_INJECTION_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# "+" then ASCII digits only (E.164 and the like): a number, never a formula.
# [0-9], not \d: Unicode digits are not exempt.
_PLAIN_PLUS_NUMBER = re.compile(r"\+[0-9]+")


@dataclass(frozen=True)
class ExportRow:
    name: str
    phone: str
    status: str
    attempts: int
    duration_seconds: float
    failure_reason: str
    call_timestamp: datetime | None
    variables: dict[str, str] = field(default_factory=dict)
    disposition: str = ""
    answered_by: str = ""
    summary: str = ""
    #: Extracted field name -> its value as text ("true"/"false", numbers as written).
    extracted: dict[str, str] = field(default_factory=dict)
    #: Consent kept on the contact (issue 16): written in the batch's
    #: consent_at / consent_source columns, normalized (UTC ISO 8601).
    consent_at: datetime | None = None
    consent_source: str = ""


def neutralize_cell(value: str) -> str:
    """Defuse spreadsheet formula injection (OWASP "CSV injection").

    A cell starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return or
    line feed (or full-width ``＝ ＋ － ＠``) gets a leading ``'`` so a
    spreadsheet shows the text as typed; negative numbers included
    (``"-1"`` becomes ``"'-1"``). Exception: a cell that is exactly ``+``
    followed by ASCII digits (an E.164 number such as ``"+14155552671"``) is
    not a formula and is returned unchanged, so exported phones re-import
    as they are. ``"+1+1"``, ``"+ 123"``, ``"+123e4"`` and ``"+cmd|' /C calc'!A0"``
    still get the ``'``. Other cells are returned unchanged.
    """
    if value and value.startswith(_INJECTION_PREFIXES):
        if _PLAIN_PLUS_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


def format_timestamp(value: datetime | None) -> str:
    """``2024-01-15T10:31:00Z``; empty for None; naive taken as UTC."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_duration(seconds: float) -> str:
    if seconds is None:
        return ""
    value = float(seconds)
    if value != value:  # NaN
        return ""
    if value.is_integer():
        return str(int(value))
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text


def export_header(custom_columns: Sequence[str], extracted_fields: Sequence[str] = ()) -> list[str]:
    """Header names (before neutralisation): fixed columns, custom ones, then
    the extracted fields."""
    taken = {c.lower() for c in EXPORT_COLUMNS + RESULT_COLUMNS}
    header = list(EXPORT_COLUMNS)
    for names, prefix in ((custom_columns, "var_"), (extracted_fields, "field_")):
        for name in names:
            out = name
            while out.lower() in taken:
                out = f"{prefix}{out}"
            taken.add(out.lower())
            header.append(out)
        if prefix == "var_":
            header.extend(RESULT_COLUMNS)
    return header


def _row_cells(row: ExportRow, custom_columns: Sequence[str], extracted_fields: Sequence[str] = ()) -> list[str]:
    cells = [
        row.name or "",
        row.phone or "",
        row.status or "",
        str(int(row.attempts)),
        _format_duration(row.duration_seconds),
        row.failure_reason or "",
        format_timestamp(row.call_timestamp),
    ]
    variables = row.variables or {}
    cells.extend(_custom_cell(row, variables, col) for col in custom_columns)
    cells.extend([row.disposition or "", row.answered_by or "", row.summary or ""])
    extracted = row.extracted or {}
    cells.extend(str(extracted.get(name, "")) for name in extracted_fields)
    return [neutralize_cell(c) for c in cells]


def _custom_cell(row: ExportRow, variables: dict[str, str], col: str) -> str:
    key = col.strip().lower()
    if key == "consent_at" and row.consent_at is not None:
        return format_timestamp(row.consent_at)
    if key == "consent_source" and row.consent_at is not None:
        return row.consent_source
    return str(variables.get(col, "") or "")


def _utf8_cut(buf: bytearray, limit: int) -> int:
    """Largest cut <= limit that does not split a UTF-8 sequence.

    ``buf[limit]`` must exist; with ``limit >= 4`` the answer is >= 1 (a
    sequence has at most three continuation bytes)."""
    cut = limit
    while cut > 0 and (buf[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def csv_chunks(
    rows: Iterable[ExportRow],
    custom_columns: Sequence[str],
    chunk_bytes: int = 64 * 1024,
    *,
    bom: bool = False,
    extracted_fields: Sequence[str] = (),
) -> Iterator[bytes]:
    """Stream the export as UTF-8 byte chunks, header row first.

    Rows are consumed lazily and the whole file is never built. Chunks end
    on a row boundary once they reach ``chunk_bytes``; a single row larger
    than that is cut (never inside a UTF-8 character) so that no chunk
    exceeds ``2 * chunk_bytes``. Each chunk decodes as UTF-8 on its own;
    the concatenation is the file. At least one chunk (the header) is
    always produced.
    """
    if chunk_bytes < 4:  # a UTF-8 character is up to 4 bytes
        raise ValueError("chunk_bytes must be >= 4")
    columns = list(custom_columns)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    out = bytearray(b"\xef\xbb\xbf" if bom else b"")

    def take() -> str:
        value = text.getvalue()
        text.seek(0)
        text.truncate(0)
        return value

    def drain(final: bool) -> Iterator[bytes]:
        if not out or (len(out) < chunk_bytes and not final):
            return
        while len(out) > 2 * chunk_bytes:
            cut = _utf8_cut(out, chunk_bytes)
            yield bytes(out[:cut])
            del out[:cut]
        yield bytes(out)
        out.clear()

    extracted = list(extracted_fields)
    writer.writerow([neutralize_cell(h) for h in export_header(columns, extracted)])
    out += take().encode("utf-8")
    yield from drain(False)
    for row in rows:
        writer.writerow(_row_cells(row, columns, extracted))
        out += take().encode("utf-8")
        yield from drain(False)
    yield from drain(True)


def row_matches_filter(status: str, export_filter: str) -> bool:
    """Export filter of the seed: ``all`` | ``successful`` | ``failed``.

    ``successful``: status ``completed``. ``failed``: ``failed`` (includes
    permanently failed after retries and agent errors), ``invalid_number``,
    ``blocked``, ``carrier_error``. Cancelled and suppressed contacts appear
    only under ``all``. Case-insensitive; an unknown filter raises
    ``ValueError``.
    """
    f = (export_filter or "").strip().lower()
    s = (status or "").strip().lower()
    if f == "all":
        return True
    if f == "successful":
        return s in SUCCESSFUL_STATUSES
    if f == "failed":
        return s in FAILED_STATUSES
    raise ValueError(f"unknown export filter {export_filter!r} (expected one of {', '.join(EXPORT_FILTERS)})")

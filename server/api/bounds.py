"""Every input bounded, in one place, before any work (issue 14 item 3).

``check_request`` walks a request message by its descriptor and collects one
BadRequest field violation per offending field (at most ``MAX_VIOLATIONS``):

- strings: at most ``chars`` characters (``DEFAULT_STRING_CHARS`` unless the
  table says otherwise) and no NUL character (PostgreSQL text refuses it);
- bytes: at most ``chars`` bytes (``DEFAULT_BYTES``);
- repeated fields: at most ``items`` items (``DEFAULT_ITEMS``); each item is
  checked like a single value (``chars`` bounds each string item);
- maps: at most ``items`` entries (``DEFAULT_MAP_ENTRIES``);
- doubles and floats: finite (no NaN or infinity);
- enums: a value the enum defines (proto3 enums are open: an unknown number
  would otherwise reach the handler);
- google.protobuf.Timestamp: within 0001-01-01 .. 9999-12-31 (what the
  Timestamp spec and Python's datetime allow), nanos in 0 .. 999,999,999;
- nesting: at most ``MAX_DEPTH`` messages deep.

``LIMITS`` is keyed by the full name of a message (any message: a request or
one nested in it, so FinishAttemptRequest's bounds also hold inside
BatchFinishAttemptsRequest) and then by field name. The limits repeat the
bounds the use cases enforce (server/domain/batch_rules.py, CsvLimits,
call_results.py, agent_connection.py …), so nothing they would reject costs
more than this walk, and anything no rule mentions still has a default.
Wired in ``server.api.errors.handles_errors``/``handles_stream_errors``, the
decorators of every servicer method on both listeners. docs/design.md §3.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from contract.agent import MAX_VARIABLE_HEADERS
from server.domain import batch_rules as rules
from server.domain import call_results as cr
from server.domain.csv_ingest.types import CsvLimits
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.paging import TOKEN_MAX_CHARS

DEFAULT_STRING_CHARS = 4096
DEFAULT_BYTES = 4096
DEFAULT_ITEMS = 1000
DEFAULT_MAP_ENTRIES = 100
MAX_DEPTH = 16
MAX_VIOLATIONS = 20

#: google.protobuf.Timestamp bounds: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
TS_MIN_SECONDS = -62_135_596_800
TS_MAX_SECONDS = 253_402_300_799


@dataclass(frozen=True)
class Limit:
    #: Characters of a string (or of each string item), bytes of a bytes field.
    chars: int | None = None
    #: Items of a repeated field, entries of a map.
    items: int | None = None
    #: A Timestamp's range in Unix seconds [lo, hi], narrower than the default.
    seconds: tuple[int, int] | None = None
    #: A number's range [lo, hi] (doubles must be finite anyway).
    number: tuple[float, float] | None = None


NAME = Limit(256)  # a resource name such as batches/bat_…/contacts/123
ID = Limit(64)
PHONE = Limit(64)
DISPLAY_NAME = Limit(rules.NAME_MAX)
PAGE_TOKEN = Limit(TOKEN_MAX_CHARS)
CSV = Limit(CsvLimits().max_bytes)
FILENAME = Limit(255)
REGION = Limit(16)
SEARCH = Limit(100)
TIMEZONE = Limit(64)
LOCAL_TIME = Limit(40)
DNC_REASON = Limit(500)
DNC_NUMBERS = Limit(64, 10_000)
STATUSES = Limit(items=32)
INTERNAL_ID = Limit(1024)  # dialer-chosen ids (trimmed further by the use cases)
#: Times a dialer reports: 1970..2199 (a call's times, not any Timestamp).
CALL_TIME = Limit(seconds=(0, 7_258_118_399))
BATCH_ITEMS = Limit(items=500)  # server.api.dialer_servicer.MAX_BATCH_ITEMS

_V1 = "batchcalls.v1."

LIMITS: dict[str, dict[str, Limit]] = {
    # --- BatchService --------------------------------------------------------
    _V1 + "ValidateContactsRequest": {"csv_content": CSV, "filename": FILENAME, "default_region": REGION},
    _V1 + "CreateBatchRequest": {
        "request_id": Limit(rules.REQUEST_ID_MAX),
        "display_name": DISPLAY_NAME,
        "description": Limit(rules.DESCRIPTION_MAX),
        "agent": NAME,
        "from_phone_number": NAME,
        "scheduled_local_time": LOCAL_TIME,
        "timezone": TIMEZONE,
        "csv_content": CSV,
        "filename": FILENAME,
        "default_region": REGION,
    },
    _V1 + "CallingWindow": {"start_local_time": LOCAL_TIME, "end_local_time": LOCAL_TIME, "weekdays": Limit(items=7)},
    _V1 + "RetryPolicy": {"outcome_retries": Limit(items=8)},
    _V1 + "OutcomeRetry": {"delay_seconds": Limit(items=10)},
    _V1 + "GetBatchRequest": {"name": NAME},
    _V1 + "ListBatchesRequest": {"page_token": PAGE_TOKEN, "statuses": STATUSES, "search": SEARCH},
    _V1 + "ListContactsRequest": {"parent": NAME, "page_token": PAGE_TOKEN, "statuses": STATUSES, "search": SEARCH},
    _V1 + "GetContactRequest": {"name": NAME},
    _V1 + "PauseBatchRequest": {"name": NAME},
    _V1 + "ResumeBatchRequest": {"name": NAME},
    _V1 + "CancelBatchRequest": {"name": NAME},
    _V1 + "DeleteBatchRequest": {"name": NAME},
    _V1 + "RescheduleBatchRequest": {"name": NAME, "scheduled_local_time": LOCAL_TIME, "timezone": TIMEZONE},
    _V1 + "WatchBatchRequest": {"name": NAME},
    _V1 + "ExportBatchRequest": {"name": NAME},
    # --- AgentService --------------------------------------------------------
    _V1 + "Agent": {"name": NAME, "agent_id": ID, "display_name": DISPLAY_NAME},
    _V1 + "AgentSipConnection": {
        "uri": Limit(512), "scheme": Limit(8), "user": Limit(128), "host": Limit(253), "transport": Limit(8),
        "username": Limit(128), "password": Limit(256), "header_fields": Limit(64, MAX_VARIABLE_HEADERS),
    },
    _V1 + "GetAgentRequest": {"name": NAME},
    _V1 + "ListAgentsRequest": {"page_token": PAGE_TOKEN},
    "google.protobuf.FieldMask": {"paths": Limit(128, 64)},
    # --- PhoneNumberService --------------------------------------------------
    _V1 + "PhoneNumber": {"name": NAME, "phone_number_id": ID, "phone_number": PHONE, "display_name": DISPLAY_NAME},
    _V1 + "OutboundTrunk": {"host": Limit(255), "username": Limit(128), "password": Limit(256)},
    _V1 + "GetPhoneNumberRequest": {"name": NAME},
    _V1 + "ListPhoneNumbersRequest": {"page_token": PAGE_TOKEN},
    _V1 + "DeletePhoneNumberRequest": {"name": NAME},
    # --- OrganizationService -------------------------------------------------
    _V1 + "Organization": {"name": NAME, "organization_id": ID, "display_name": DISPLAY_NAME},
    _V1 + "CreateApiKeyRequest": {"display_name": DISPLAY_NAME},
    _V1 + "ListApiKeysRequest": {"page_token": PAGE_TOKEN},
    _V1 + "DeleteApiKeyRequest": {"name": NAME},
    _V1 + "AddDoNotCallNumbersRequest": {"phone_numbers": DNC_NUMBERS, "reason": DNC_REASON},
    _V1 + "RemoveDoNotCallNumbersRequest": {"phone_numbers": DNC_NUMBERS},
    _V1 + "ListDoNotCallNumbersRequest": {"page_token": PAGE_TOKEN, "search": Limit(32)},
    _V1 + "ImportDoNotCallNumbersRequest": {
        "csv_content": CSV, "filename": FILENAME, "default_region": REGION, "reason": DNC_REASON,
    },
    # --- ComplianceService ---------------------------------------------------
    # Calendars (holidays, DST) are computed for the instant asked about and
    # the days after it: 1970..2199, not the whole Timestamp range.
    _V1 + "ExplainCallabilityRequest": {"phone_number": PHONE, "batch": NAME, "time": Limit(seconds=(0, 7_258_118_399))},
    # --- ResultsService ------------------------------------------------------
    _V1 + "ReportCallResultRequest": {"provider_call_id": Limit(128), "attempt_id": Limit(40)},
    _V1 + "CallResult": {
        "transcript": Limit(cr.TRANSCRIPT_MAX), "recording_uri": Limit(cr.RECORDING_URI_MAX),
        "summary": Limit(cr.SUMMARY_MAX), "extracted_fields": Limit(items=cr.FIELDS_MAX),
    },
    _V1 + "ExtractedField": {"name": Limit(cr.FIELD_NAME_MAX), "string_value": Limit(cr.FIELD_STRING_MAX)},
    # --- DialerService (internal listener) -----------------------------------
    _V1 + "StartAttemptRequest": {
        "organization_id": ID, "batch_id": ID, "contact_id": Limit(32),
        "lease_id": INTERNAL_ID, "dialer_id": INTERNAL_ID, "provider_call_id": INTERNAL_ID,
    },
    _V1 + "MarkAnsweredRequest": {"attempt_id": ID, "answer_time": CALL_TIME},
    _V1 + "FinishAttemptRequest": {
        "attempt_id": ID, "recording_uri": Limit(cr.RECORDING_URI_MAX), "transcript": Limit(cr.TRANSCRIPT_MAX),
        "closed_by": INTERNAL_ID, "detail": Limit(DEFAULT_STRING_CHARS),
        "answer_time": CALL_TIME, "end_time": CALL_TIME,
        # A day: far above any call (at most 4 h by batch_rules), far below
        # what the cost arithmetic and a bigint hold.
        "duration_seconds": Limit(number=(0.0, 86_400.0)),
    },
    _V1 + "BatchStartAttemptsRequest": {"requests": BATCH_ITEMS},
    _V1 + "BatchMarkAnsweredRequest": {"requests": BATCH_ITEMS},
    _V1 + "BatchFinishAttemptsRequest": {"requests": BATCH_ITEMS},
}

def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_STRING, _BYTES = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_ENUM, _MESSAGE = FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_MESSAGE


class _Full(Exception):
    """Enough violations collected: stop walking."""


class _Collector:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))
        if len(self.items) >= MAX_VIOLATIONS:
            raise _Full


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    if isinstance(flag, bool):
        return flag
    return field.label == FieldDescriptor.LABEL_REPEATED


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == _MESSAGE and field.message_type.GetOptions().map_entry


def _check_timestamp(msg: Any, path: str, out: _Collector, limit: Limit | None = None) -> None:
    if limit is not None and limit.seconds is not None:
        lo, hi = limit.seconds
        if not lo <= msg.seconds <= hi:
            out.add(path, f"a time between {_iso(lo)} and {_iso(hi)}")
            return
    if not TS_MIN_SECONDS <= msg.seconds <= TS_MAX_SECONDS:
        out.add(path, "a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    elif not 0 <= msg.nanos <= 999_999_999:
        out.add(path, "nanos must be between 0 and 999,999,999")


def _check_value(field: FieldDescriptor, value: Any, path: str, limit: Limit | None, depth: int,
                 out: _Collector) -> None:
    t = field.type
    if t == _STRING:
        most = limit.chars if limit and limit.chars is not None else DEFAULT_STRING_CHARS
        if len(value) > most:
            out.add(path, f"at most {most:,} characters")
        elif "\x00" in value:
            out.add(path, "must not contain NUL characters")
    elif t == _BYTES:
        most = limit.chars if limit and limit.chars is not None else DEFAULT_BYTES
        if len(value) > most:
            out.add(path, f"at most {most:,} bytes")
    elif t in _FLOATS:
        if not math.isfinite(value):
            out.add(path, "must be a finite number")
        elif limit is not None and limit.number is not None and not limit.number[0] <= value <= limit.number[1]:
            out.add(path, f"must be between {limit.number[0]:g} and {limit.number[1]:g}")
    elif t == _ENUM:
        if field.enum_type.values_by_number.get(value) is None:
            out.add(path, f"unknown value {value} of {field.enum_type.name}")
    elif t == _MESSAGE:
        if value.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
            _check_timestamp(value, path, out, limit)
        else:
            _walk(value, path, depth + 1, out)


def _walk(msg: Any, prefix: str, depth: int, out: _Collector) -> None:
    desc = msg.DESCRIPTOR
    if depth > MAX_DEPTH:
        out.add(prefix, f"nested more than {MAX_DEPTH} levels deep")
        return
    if desc.full_name == "google.protobuf.Timestamp":
        _check_timestamp(msg, prefix, out)
        return
    limits = LIMITS.get(desc.full_name, {})
    for field, value in msg.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        limit = limits.get(field.name)
        if _is_map(field):
            most = limit.items if limit and limit.items is not None else DEFAULT_MAP_ENTRIES
            if len(value) > most:
                out.add(path, f"at most {most:,} entries")
                continue
            key_f, value_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            for k in value:
                where = f"{path}[{k!r}]" if isinstance(k, str) and len(k) <= 64 else path
                _check_value(key_f, k, where, limit, depth, out)
                _check_value(value_f, value[k], where, limit, depth, out)
        elif _is_repeated(field):
            most = limit.items if limit and limit.items is not None else DEFAULT_ITEMS
            if len(value) > most:
                out.add(path, f"at most {most:,} items, got {len(value):,}")
                continue
            for i, item in enumerate(value):
                _check_value(field, item, f"{path}[{i}]", limit, depth, out)
        else:
            _check_value(field, value, path, limit, depth, out)


def violations(request: Any) -> list[FieldViolation]:
    """The bounds ``request`` breaks (at most MAX_VIOLATIONS), [] when none."""
    out = _Collector()
    try:
        _walk(request, "", 0, out)
    except _Full:
        pass
    return out.items


def check_request(request: Any) -> None:
    """Raises InvalidArgument with a violation per offending field."""
    if request is None or not hasattr(request, "DESCRIPTOR"):
        return
    found = violations(request)
    if found:
        raise InvalidArgument(found)

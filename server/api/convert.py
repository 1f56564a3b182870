"""Pure conversions between rows / domain values and batchcalls.v1 messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from batchcalls.v1 import batch_pb2, organization_service_pb2 as org_pb2, resources_pb2 as res
from contract.trunk import DEFAULT_TRUNK_CPS
from server.domain.agent_connection import parse_sip_uri
from server.domain.batch_rules import BatchStatus, allowed_actions
from server.domain.call_results import CallReport, ExtractedValue
from server.domain.contact_rules import FINAL_FAILURES, IN_CALL, WAITING, counter_column
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.ids import batch_name, contact_name
from server.domain.retry import DELAYED_OUTCOMES, VOICEMAIL_RETRY_LATER, RetryPolicy


def enum_value(enum: Any, prefix: str, word: str) -> int:
    if not word:
        return 0
    try:
        return enum.Value(f"{prefix}_{word.upper()}")
    except ValueError:
        return 0


def enum_word(enum: Any, prefix: str, value: int) -> str | None:
    """Proto enum -> lowercase domain word; None for UNSPECIFIED/unknown."""
    try:
        name = enum.Name(value)
    except ValueError:
        return None
    word = name[len(prefix) + 1:].lower()
    return None if word == "unspecified" else word


def ts(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    t = Timestamp()
    t.FromDatetime(dt.astimezone(timezone.utc))
    return t


def from_ts(t: Timestamp, present: bool, field: str = "time") -> datetime | None:
    """A request's Timestamp as an aware datetime. server/api/bounds.py has
    already refused one out of range; this never lets one through as INTERNAL."""
    if not present:
        return None
    try:
        return t.ToDatetime(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidArgument(FieldViolation(field, "a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")) from None


def batch_status(word: str) -> int:
    return enum_value(res.BatchStatus, "BATCH_STATUS", word)


def contact_status(word: str) -> int:
    return enum_value(res.ContactStatus, "CONTACT_STATUS", word)


def call_outcome(word: str) -> int:
    return enum_value(res.CallOutcome, "CALL_OUTCOME", word)


def window_msg(start: str | None, end: str | None, weekdays: Any) -> res.CallingWindow | None:
    if not start:
        return None
    return res.CallingWindow(start_local_time=start, end_local_time=end or "", weekdays=list(weekdays or []))


def agent_msg(r: Any) -> res.Agent:
    return res.Agent(
        name=f"agents/{r.id}",
        agent_id=r.id,
        display_name=r.display_name,
        architecture=enum_value(res.AgentArchitecture, "AGENT_ARCHITECTURE", r.architecture),
        active=r.active,
        recording_enabled=r.recording_enabled,
        transcript_enabled=r.transcript_enabled,
        create_time=ts(r.created_at),
        update_time=ts(r.updated_at),
        sip_connection=sip_connection_msg(r),
    )


def sip_connection_msg(r: Any, *, with_password: bool = False) -> res.AgentSipConnection | None:
    """The agent's SIP connection; the password only for the internal API."""
    if not getattr(r, "sip_uri", ""):
        return None
    uri, _ = parse_sip_uri(r.sip_uri)
    msg = res.AgentSipConnection(
        uri=r.sip_uri, username=r.sip_username, password_set=bool(r.sip_password),
        header_fields=list(r.sip_header_fields or []),
    )
    if uri is not None:
        msg.scheme, msg.user, msg.host, msg.port, msg.transport = uri.scheme, uri.user, uri.host, uri.port, uri.transport
    if with_password:
        msg.password = r.sip_password
    return msg


def call_result_msg(a: Any) -> batch_pb2.CallResult | None:
    """What the agent reported on attempt row ``a``; None if nothing."""
    if a is None or not getattr(a, "disposition", ""):
        return None
    fields = []
    for f in a.extracted_fields or []:
        item = batch_pb2.ExtractedField(name=str(f.get("name", "")))
        kind, value = f.get("type"), f.get("value")
        if kind == "string":
            item.string_value = str(value)
        elif kind == "number":
            item.number_value = float(value)
        elif kind == "bool":
            item.bool_value = bool(value)
        fields.append(item)
    return batch_pb2.CallResult(
        disposition=enum_value(batch_pb2.CallDisposition, "CALL_DISPOSITION", a.disposition),
        answered_by=enum_value(batch_pb2.AnsweredBy, "ANSWERED_BY", a.answered_by),
        callback_time=ts(a.callback_at),
        transcript=a.result_transcript,
        recording_uri=a.result_recording_uri,
        summary=a.summary,
        extracted_fields=fields,
        report_time=ts(a.result_at),
    )


def call_report(msg: batch_pb2.CallResult, present: bool) -> CallReport:
    """The request's result as the domain reads it."""
    fields = []
    for f in msg.extracted_fields:
        kind = f.WhichOneof("value") or ""
        value: Any = getattr(f, kind) if kind else None
        fields.append(ExtractedValue(f.name, kind.removesuffix("_value"), value))
    return CallReport(
        disposition=(enum_word(batch_pb2.CallDisposition, "CALL_DISPOSITION", msg.disposition) or "") if present else "",
        answered_by=enum_word(batch_pb2.AnsweredBy, "ANSWERED_BY", msg.answered_by) or "unknown",
        callback_at=from_ts(msg.callback_time, msg.HasField("callback_time")),
        transcript=msg.transcript,
        recording_uri=msg.recording_uri,
        summary=msg.summary,
        fields=tuple(fields),
    )


def simulation_msg(sim: dict[str, float]) -> res.SimulationProfile:
    fields = {f.name for f in res.SimulationProfile.DESCRIPTOR.fields}
    return res.SimulationProfile(**{k: float(v) for k, v in (sim or {}).items() if k in fields})


def phone_number_msg(r: Any) -> res.PhoneNumber:
    msg = res.PhoneNumber(
        name=f"phoneNumbers/{r.id}",
        phone_number_id=r.id,
        phone_number=r.e164,
        display_name=r.display_name,
        create_time=ts(r.created_at),
    )
    if r.trunk_kind:
        msg.outbound_trunk.CopyFrom(
            res.OutboundTrunk(
                kind=enum_value(res.TrunkKind, "TRUNK_KIND", r.trunk_kind),
                host=r.trunk_host,
                port=r.trunk_port,
                transport=enum_value(res.SipTransport, "SIP_TRANSPORT", r.trunk_transport) if r.trunk_kind == "sip" else 0,
                username=r.trunk_username,
                password_set=bool(r.trunk_password),
                caller_id_format=enum_value(res.CallerIdFormat, "CALLER_ID_FORMAT", r.caller_id_format),
                simulation=simulation_msg(r.simulation) if r.trunk_kind == "simulated" else None,
                calls_per_second=float(getattr(r, "calls_per_second", None) or DEFAULT_TRUNK_CPS),
            )
        )
    return msg


def pacing_state_msg(configured_cps: float, raw: dict[str, str] | None, now_ms: float) -> res.TrunkPacingState:
    """A trunk's TrunkPacingState from its Redis pacing fields (``rate``,
    ``until``, ``streak``, ``last_pb``; docs/pacing.md); no fields = the
    trunk runs at its configured rate, not throttled."""
    raw = raw or {}
    msg = res.TrunkPacingState(effective_calls_per_second=configured_cps)
    try:
        if raw.get("rate"):
            msg.effective_calls_per_second = min(configured_cps, float(raw["rate"]))
        until = float(raw["until"]) if raw.get("until") else None
        if until is not None and until > now_ms:
            msg.throttled = True
            msg.throttled_until_time.FromMilliseconds(int(until))
        msg.consecutive_pushbacks = int(float(raw.get("streak") or 0))
        if raw.get("last_pb"):
            msg.last_pushback_time.FromMilliseconds(int(float(raw["last_pb"])))
    except ValueError:  # a garbled field: show the configured rate
        pass
    return msg


def trunk_input(msg: res.PhoneNumber) -> dict[str, Any] | None:
    if not msg.HasField("outbound_trunk"):
        return None
    t = msg.outbound_trunk
    sim = {}
    if t.HasField("simulation"):
        sim = {f.name: v for f, v in t.simulation.ListFields()}
    return {
        "kind": enum_word(res.TrunkKind, "TRUNK_KIND", t.kind),
        "host": t.host,
        "port": t.port,
        "transport": enum_word(res.SipTransport, "SIP_TRANSPORT", t.transport) or "udp",
        "username": t.username,
        "password": t.password,
        "caller_id_format": enum_word(res.CallerIdFormat, "CALLER_ID_FORMAT", t.caller_id_format) or "e164",
        "simulation": sim,
        "calls_per_second": t.calls_per_second,
    }


def organization_msg(r: Any) -> org_pb2.Organization:
    return org_pb2.Organization(
        name=f"organizations/{r.id}",
        organization_id=r.id,
        display_name=r.display_name,
        concurrency_limit=r.concurrency_limit,
        credit_balance_micros=r.credit_balance_micros,
        default_calling_window=org_window_msg(r),
        frequency_cap_per_24h=r.frequency_cap_per_24h,
        circuit_breaker_window=r.circuit_breaker_window,
        circuit_breaker_threshold=r.circuit_breaker_threshold,
        credits_enforced=r.credits_enforced,
        create_time=ts(r.created_at),
        calling_any_time=bool(getattr(r, "calling_any_time", False)),
        require_consent=bool(getattr(r, "require_consent", False)),
        calls_per_second=float(getattr(r, "calls_per_second", 0.0) or 0.0),
        reserved_concurrency=int(getattr(r, "reserved_concurrency", 0) or 0),
    )


def org_window_msg(r: Any) -> res.CallingWindow | None:
    """The organization's window in force: its own, none when its owner chose
    calling_any_time, else the safe default 08:00–21:00 (issue 16)."""
    if getattr(r, "window_start", None) or getattr(r, "calling_any_time", False):
        return window_msg(r.window_start, r.window_end, r.window_weekdays)
    from server.domain.jurisdiction import DEFAULT_ORGANIZATION_WINDOW as d

    return res.CallingWindow(start_local_time=d.start_text, end_local_time=d.end_text)


def api_key_msg(r: Any) -> org_pb2.ApiKey:
    return org_pb2.ApiKey(
        name=f"apiKeys/{r.id}",
        api_key_id=r.id,
        display_name=r.display_name,
        role=enum_value(res.Role, "ROLE", r.role),
        prefix=r.prefix,
        create_time=ts(r.created_at),
        last_used_time=ts(r.last_used_at),
        expire_time=ts(getattr(r, "expire_at", None)),
    )


def stats_msg(r: Any, eta: datetime | None = None, waiting_for_window: int = 0, retries_pending: int = 0) -> batch_pb2.BatchStats:
    failed_total = sum(getattr(r, counter_column(s)) for s in FINAL_FAILURES)
    processing = sum(getattr(r, counter_column(s)) for s in WAITING | IN_CALL)
    finished = r.n_completed + failed_total
    hist = sorted((int(k), v) for k, v in (r.attempt_histogram or {}).items())
    outcomes = []
    for key, count in sorted((r.outcomes_by_attempt or {}).items()):
        number, _, outcome = key.partition(":")
        outcomes.append(
            batch_pb2.OutcomeByAttempt(attempt_number=int(number), outcome=call_outcome(outcome), count=count)
        )
    closed = sum(int(c) for c in (r.outcomes_by_attempt or {}).values())
    machine = sum(int(c) for k, c in (r.outcomes_by_attempt or {}).items() if k.partition(":")[2] == "voicemail")
    humans = max(0, int(r.connected_calls) - machine)
    return batch_pb2.BatchStats(
        human_answers=humans,
        machine_answers=machine,
        pickup_rate=(humans / closed) if closed else 0.0,
        total_contacts=r.total_contacts,
        pending=r.n_pending,
        queued=r.n_queued,
        dialing=r.n_dialing,
        connected=r.n_connected,
        completed=r.n_completed,
        failed=r.n_failed,
        invalid_number=r.n_invalid_number,
        blocked=r.n_blocked,
        carrier_error=r.n_carrier_error,
        cancelled=r.n_cancelled,
        suppressed=r.n_suppressed,
        successful=r.n_completed,
        success_rate=(r.n_completed / finished) if finished else 0.0,
        failed_total=failed_total,
        failure_rate=(failed_total / finished) if finished else 0.0,
        processing=processing,
        attempts_total=r.attempts_total,
        connected_calls=r.connected_calls,
        total_duration_seconds=r.total_duration_seconds,
        average_duration_seconds=(r.total_duration_seconds / r.connected_calls) if r.connected_calls else 0.0,
        estimated_completion_time=ts(eta),
        estimated_cost_micros=r.estimated_cost_micros,
        cost_micros=r.cost_micros,
        attempts_histogram=[batch_pb2.AttemptCount(attempts=a, contacts=c) for a, c in hist],
        outcomes_by_attempt=outcomes,
        waiting_for_window=waiting_for_window,
        retries_pending=retries_pending,
    )


def retry_policy_msg(policy: RetryPolicy) -> batch_pb2.RetryPolicy:
    """Every delayed outcome with the delays in force for it."""
    return batch_pb2.RetryPolicy(outcome_retries=[
        batch_pb2.OutcomeRetry(outcome=call_outcome(o), delay_seconds=[round(d) for d in policy.delays_for(o)])
        for o in DELAYED_OUTCOMES
    ])


def retry_delays_input(msg: batch_pb2.RetryPolicy, field: str = "retry_policy") -> tuple[dict[str, list[float]], list[tuple[str, str]]]:
    """A request's RetryPolicy as {outcome word: delays}, and (field, problem)
    for entries that name no outcome or name one twice (the delay bounds are
    the service's)."""
    own: dict[str, list[float]] = {}
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(msg.outcome_retries):
        word = enum_word(res.CallOutcome, "CALL_OUTCOME", item.outcome)
        where = f"{field}.outcome_retries[{i}]"
        if word is None:
            problems.append((f"{where}.outcome", "required: BUSY, NO_ANSWER, TIMEOUT or VOICEMAIL"))
        elif word in own:
            problems.append((f"{where}.outcome", f"{word} is given twice"))
        else:
            own[word] = [float(d) for d in item.delay_seconds]
    return own, problems


def batch_msg(r: Any, eta: datetime | None = None, *, retry_default: RetryPolicy | None = None,
              **extra: int) -> batch_pb2.Batch:
    mode = {"none": "NONE", "custom": "CUSTOM"}.get(r.window_mode, "UNSPECIFIED")
    if r.window_mode == "custom":
        window = window_msg(r.window_start, r.window_end, r.window_weekdays)
    elif r.window_mode == "none":
        window = None
    elif r.org_window_start or getattr(r, "org_calling_any_time", True):
        window = window_msg(r.org_window_start, r.org_window_end, r.org_window_weekdays)
    else:  # the organization's safe default (issue 16)
        window = window_msg("08:00", "21:00", None)
    return batch_pb2.Batch(
        name=batch_name(r.id),
        batch_id=r.id,
        display_name=r.display_name,
        description=r.description,
        status=batch_status(r.status),
        status_reason=r.status_reason,
        agent=f"agents/{r.agent_id}",
        agent_display_name=r.agent_display_name,
        from_phone_number=f"phoneNumbers/{r.from_number_id}",
        from_phone_number_e164=r.from_e164,
        concurrency_limit=r.concurrency_limit,
        max_attempts=r.max_attempts,
        scheduled_start_time=ts(r.scheduled_at),
        timezone=r.timezone,
        create_time=ts(r.created_at),
        start_time=ts(r.started_at),
        complete_time=ts(r.completed_at),
        update_time=ts(r.updated_at),
        stats=stats_msg(r, eta, **extra),
        calling_window_mode=res.CallingWindowMode.Value(f"CALLING_WINDOW_MODE_{mode}"),
        calling_window=window,
        default_region=r.default_region,
        custom_columns=list(r.custom_columns or []),
        max_call_duration_seconds=r.max_call_seconds,
        allowed_actions=allowed_action_values(r.status),
        retry_policy=retry_policy_msg(
            (retry_default or RetryPolicy()).for_batch(getattr(r, "retry_delays", None), None)
        ),
        voicemail_action=batch_pb2.VoicemailAction.Value(
            f"VOICEMAIL_ACTION_{(getattr(r, 'voicemail_action', None) or VOICEMAIL_RETRY_LATER).upper()}"
        ),
    )


def allowed_action_values(status_word: str) -> list[int]:
    """The action matrix's row for a status, as BatchAction values: the UI
    and API clients read it instead of keeping a copy of the matrix."""
    return [
        batch_pb2.BatchAction.Value(f"BATCH_ACTION_{a.name}") for a in allowed_actions(BatchStatus(status_word))
    ]


def attempt_msg(a: Any) -> batch_pb2.Attempt:
    return batch_pb2.Attempt(
        attempt_number=a.attempt_number,
        outcome=call_outcome(a.outcome),
        start_time=ts(a.started_at),
        answer_time=ts(a.answered_at),
        end_time=ts(a.ended_at),
        duration_seconds=a.duration_seconds,
        provider_call_id=a.provider_call_id,
        recording_uri=a.recording_uri,
        transcript=a.transcript,
        sip_code=a.sip_code,
        dialer_id=a.dialer_id,
        cost_micros=a.cost_micros,
        attempt_id=a.id,
        result=call_result_msg(a),
        agent_answer_delay_ms=getattr(a, "agent_answer_delay_ms", 0) or 0,
        agent_sip_code=getattr(a, "agent_sip_code", 0) or 0,
    )


#: Contact fields copied only when set: a default left unset is the same
#: message in proto3, and most contacts carry no transcript, recording,
#: failure or consent (a page of 100 converts in half the time).
_CONTACT_TEXT = (("display_name", "name"), ("email", "email"), ("failure_reason", "failure_reason"),
                 ("recording_uri", "recording_uri"), ("transcript", "transcript"), ("wait_reason", "wait_reason"),
                 ("duration_seconds", "duration_seconds"), ("cost_micros", "cost_micros"),
                 ("timezone_fallback", "tz_fallback"))
_CONTACT_TIMES = (("last_attempt_time", "last_attempt_at"), ("next_attempt_time", "next_attempt_at"),
                  ("call_start_time", "call_started_at"), ("call_end_time", "call_ended_at"),
                  ("consent_time", "consent_at"))
#: Columns a contact row may lack (rows of older queries): read with a default.
_CONTACT_OPTIONAL = frozenset({"consent_at", "consent_source", "result_attempt_id"})


def _column_reader(c: Any) -> Any:
    """``read(column)`` of a row: through its mapping when it is a SQLAlchemy
    Row (a sixth of the cost of attribute access, which a page pays 30 times
    a contact), else by attribute."""
    m = getattr(c, "_mapping", None)
    if m is None:
        return lambda k: getattr(c, k, None)
    get = m.__getitem__

    def read(k: str) -> Any:
        return m.get(k) if k in _CONTACT_OPTIONAL else get(k)

    return read


def contact_msg(c: Any, tries: list[Any] | None = None, result_attempt: Any = None) -> batch_pb2.Contact:
    """``result_attempt``: the attempt row of ``c.result_attempt_id`` when
    the caller read it (GetContact finds it among ``tries``)."""
    col = _column_reader(c)
    if result_attempt is None and tries and col("result_attempt_id"):
        result_attempt = next((a for a in tries if a.id == col("result_attempt_id")), None)
    fields: dict[str, Any] = {
        "name": contact_name(col("batch_id"), col("id")),
        "contact_id": str(col("id")),
        "phone_number": col("phone"),
        "status": contact_status(col("status")),
        "attempts": col("attempts"),
        "max_attempts": col("max_attempts"),
        "row_number": col("row_number"),
    }
    for field, column in _CONTACT_TEXT:
        value = col(column)
        if value:
            fields[field] = value
    if last_outcome := col("last_outcome"):
        fields["last_outcome"] = call_outcome(last_outcome)
    if variables := col("variables"):
        fields["variables"] = {str(k): str(v) for k, v in variables.items()}
    if timezones := col("timezones"):
        fields["timezones"] = list(timezones)
    if tries:
        fields["attempt_details"] = [attempt_msg(a) for a in tries]
    if (result := call_result_msg(result_attempt)) is not None:
        fields["result"] = result
    if consent_source := col("consent_source"):
        fields["consent_source"] = consent_source
    msg = batch_pb2.Contact(**fields)
    for field, column in _CONTACT_TIMES:
        when = col(column)
        if when is not None:
            getattr(msg, field).FromDatetime(when.astimezone(timezone.utc))
    return msg


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CONTACT_STATUS_VALUES: dict[str, int] = {}
_CALL_OUTCOME_VALUES: dict[str, int] = {}


def contact_page_reader(columns: Sequence[str]) -> Callable[[Any], batch_pb2.Contact]:
    """``contact_msg(row)`` for the rows of one result whose columns are
    ``columns`` (a ListContacts page: no attempts, so no result): the same
    message at about a third of the cost, the columns read by position
    (looked up once a page, not 30 times a contact), the enum values
    looked up once a process, a time's seconds and nanos computed (what
    ``Timestamp.FromDatetime`` computes: whole seconds since the epoch in
    UTC, and the microseconds) and given to the constructor with the rest.
    A missing optional column (``_CONTACT_OPTIONAL``) reads as None, any
    other raises KeyError here."""
    at = {name: i for i, name in enumerate(columns)}

    def pos(column: str) -> int | None:
        return at.get(column) if column in _CONTACT_OPTIONAL else at[column]

    i_id, i_batch, i_phone, i_status, i_attempts, i_max, i_row = (
        at[c] for c in ("id", "batch_id", "phone", "status", "attempts", "max_attempts", "row_number"))
    i_outcome, i_vars, i_zones = at["last_outcome"], at["variables"], at["timezones"]
    i_consent_source = pos("consent_source")
    texts = tuple((field, at[column]) for field, column in _CONTACT_TEXT)
    times = tuple((field, i) for field, column in _CONTACT_TIMES if (i := pos(column)) is not None)
    statuses, outcomes, epoch, timestamp = _CONTACT_STATUS_VALUES, _CALL_OUTCOME_VALUES, _EPOCH, Timestamp
    contact = batch_pb2.Contact

    def read(r: Any) -> batch_pb2.Contact:
        word = r[i_status]
        status = statuses.get(word)
        if status is None:
            status = statuses[word] = contact_status(word)
        fields: dict[str, Any] = {
            "name": contact_name(r[i_batch], r[i_id]),
            "contact_id": str(r[i_id]),
            "phone_number": r[i_phone],
            "status": status,
            "attempts": r[i_attempts],
            "max_attempts": r[i_max],
            "row_number": r[i_row],
        }
        for field, i in texts:
            value = r[i]
            if value:
                fields[field] = value
        if last_outcome := r[i_outcome]:
            outcome = outcomes.get(last_outcome)
            if outcome is None:
                outcome = outcomes[last_outcome] = call_outcome(last_outcome)
            fields["last_outcome"] = outcome
        if variables := r[i_vars]:
            fields["variables"] = {str(k): str(v) for k, v in variables.items()}
        if timezones := r[i_zones]:
            fields["timezones"] = list(timezones)
        if i_consent_source is not None and (consent_source := r[i_consent_source]):
            fields["consent_source"] = consent_source
        for field, i in times:
            when = r[i]
            if when is not None:
                d = when - epoch
                fields[field] = timestamp(seconds=d.days * 86400 + d.seconds, nanos=d.microseconds * 1000)
        return contact(**fields)

    return read


def report_msg(report: Any, suppressed: set[int] | dict[int, str] | None = None) -> batch_pb2.ValidationReport:
    """``suppressed``: row numbers, or row number -> reason (issue 16)."""
    suppressed = suppressed or set()
    why = suppressed if isinstance(suppressed, dict) else {}
    sup_rows = [
        batch_pb2.SuppressedRow(row_number=c.row_number, phone_number=c.phone, reason=why.get(c.row_number, ""))
        for c in report.contacts
        if c.row_number in suppressed
    ]
    return batch_pb2.ValidationReport(
        total_rows=report.total_rows,
        valid_rows=report.valid_rows,
        invalid_count=len(report.invalid_rows),
        invalid_rows=[
            batch_pb2.InvalidRow(row_number=i.row_number, reason=i.reason, value=i.value) for i in report.invalid_rows
        ],
        duplicate_count=len(report.duplicate_rows),
        duplicate_rows=[
            batch_pb2.DuplicateRow(row_number=d.row_number, duplicate_of_row=d.duplicate_of_row, phone_number=d.phone)
            for d in report.duplicate_rows
        ],
        empty_rows=report.empty_rows,
        normalized_count=report.normalized_count,
        custom_columns=list(report.custom_columns),
        header_detected=report.header_detected,
        delimiter=report.delimiter,
        suppressed_count=len(sup_rows),
        suppressed_rows=sup_rows,
        warnings=list(report.warnings),
    )


def cost_msg(contacts: int, estimate_micros: int, rate_micros: int) -> batch_pb2.CostEstimate:
    return batch_pb2.CostEstimate(
        contacts=contacts,
        assumed_minutes_per_call=3.0,
        rate_micros_per_minute=rate_micros,
        estimated_cost_micros=estimate_micros,
    )

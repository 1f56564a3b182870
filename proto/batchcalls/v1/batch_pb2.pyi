import datetime

from batchcalls.v1 import compliance_pb2 as _compliance_pb2
from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoicemailAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOICEMAIL_ACTION_UNSPECIFIED: _ClassVar[VoicemailAction]
    VOICEMAIL_ACTION_RETRY_LATER: _ClassVar[VoicemailAction]
    VOICEMAIL_ACTION_DONE: _ClassVar[VoicemailAction]

class BatchAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_ACTION_UNSPECIFIED: _ClassVar[BatchAction]
    BATCH_ACTION_VIEW: _ClassVar[BatchAction]
    BATCH_ACTION_PAUSE: _ClassVar[BatchAction]
    BATCH_ACTION_RESUME: _ClassVar[BatchAction]
    BATCH_ACTION_CANCEL: _ClassVar[BatchAction]
    BATCH_ACTION_DELETE: _ClassVar[BatchAction]
    BATCH_ACTION_RESCHEDULE: _ClassVar[BatchAction]
    BATCH_ACTION_EXPORT: _ClassVar[BatchAction]

class CallDisposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_DISPOSITION_UNSPECIFIED: _ClassVar[CallDisposition]
    CALL_DISPOSITION_COMPLETED: _ClassVar[CallDisposition]
    CALL_DISPOSITION_VOICEMAIL: _ClassVar[CallDisposition]
    CALL_DISPOSITION_OPT_OUT: _ClassVar[CallDisposition]
    CALL_DISPOSITION_CALLBACK_REQUESTED: _ClassVar[CallDisposition]
    CALL_DISPOSITION_WRONG_NUMBER: _ClassVar[CallDisposition]
    CALL_DISPOSITION_TRANSFERRED: _ClassVar[CallDisposition]

class AnsweredBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWERED_BY_UNSPECIFIED: _ClassVar[AnsweredBy]
    ANSWERED_BY_HUMAN: _ClassVar[AnsweredBy]
    ANSWERED_BY_MACHINE: _ClassVar[AnsweredBy]
    ANSWERED_BY_UNKNOWN: _ClassVar[AnsweredBy]
VOICEMAIL_ACTION_UNSPECIFIED: VoicemailAction
VOICEMAIL_ACTION_RETRY_LATER: VoicemailAction
VOICEMAIL_ACTION_DONE: VoicemailAction
BATCH_ACTION_UNSPECIFIED: BatchAction
BATCH_ACTION_VIEW: BatchAction
BATCH_ACTION_PAUSE: BatchAction
BATCH_ACTION_RESUME: BatchAction
BATCH_ACTION_CANCEL: BatchAction
BATCH_ACTION_DELETE: BatchAction
BATCH_ACTION_RESCHEDULE: BatchAction
BATCH_ACTION_EXPORT: BatchAction
CALL_DISPOSITION_UNSPECIFIED: CallDisposition
CALL_DISPOSITION_COMPLETED: CallDisposition
CALL_DISPOSITION_VOICEMAIL: CallDisposition
CALL_DISPOSITION_OPT_OUT: CallDisposition
CALL_DISPOSITION_CALLBACK_REQUESTED: CallDisposition
CALL_DISPOSITION_WRONG_NUMBER: CallDisposition
CALL_DISPOSITION_TRANSFERRED: CallDisposition
ANSWERED_BY_UNSPECIFIED: AnsweredBy
ANSWERED_BY_HUMAN: AnsweredBy
ANSWERED_BY_MACHINE: AnsweredBy
ANSWERED_BY_UNKNOWN: AnsweredBy

class Batch(_message.Message):
    __slots__ = ("name", "batch_id", "display_name", "description", "status", "status_reason", "agent", "agent_display_name", "from_phone_number", "from_phone_number_e164", "concurrency_limit", "max_attempts", "scheduled_start_time", "timezone", "create_time", "start_time", "complete_time", "update_time", "stats", "calling_window_mode", "calling_window", "default_region", "custom_columns", "max_call_duration_seconds", "allowed_actions", "retry_policy", "voicemail_action")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    AGENT_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FROM_PHONE_NUMBER_E164_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CALLING_WINDOW_MODE_FIELD_NUMBER: _ClassVar[int]
    CALLING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REGION_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MAX_CALL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    VOICEMAIL_ACTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    batch_id: str
    display_name: str
    description: str
    status: _resources_pb2.BatchStatus
    status_reason: str
    agent: str
    agent_display_name: str
    from_phone_number: str
    from_phone_number_e164: str
    concurrency_limit: int
    max_attempts: int
    scheduled_start_time: _timestamp_pb2.Timestamp
    timezone: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    stats: BatchStats
    calling_window_mode: _resources_pb2.CallingWindowMode
    calling_window: _resources_pb2.CallingWindow
    default_region: str
    custom_columns: _containers.RepeatedScalarFieldContainer[str]
    max_call_duration_seconds: int
    allowed_actions: _containers.RepeatedScalarFieldContainer[BatchAction]
    retry_policy: RetryPolicy
    voicemail_action: VoicemailAction
    def __init__(self, name: _Optional[str] = ..., batch_id: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[_resources_pb2.BatchStatus, str]] = ..., status_reason: _Optional[str] = ..., agent: _Optional[str] = ..., agent_display_name: _Optional[str] = ..., from_phone_number: _Optional[str] = ..., from_phone_number_e164: _Optional[str] = ..., concurrency_limit: _Optional[int] = ..., max_attempts: _Optional[int] = ..., scheduled_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timezone: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stats: _Optional[_Union[BatchStats, _Mapping]] = ..., calling_window_mode: _Optional[_Union[_resources_pb2.CallingWindowMode, str]] = ..., calling_window: _Optional[_Union[_resources_pb2.CallingWindow, _Mapping]] = ..., default_region: _Optional[str] = ..., custom_columns: _Optional[_Iterable[str]] = ..., max_call_duration_seconds: _Optional[int] = ..., allowed_actions: _Optional[_Iterable[_Union[BatchAction, str]]] = ..., retry_policy: _Optional[_Union[RetryPolicy, _Mapping]] = ..., voicemail_action: _Optional[_Union[VoicemailAction, str]] = ...) -> None: ...

class OutcomeRetry(_message.Message):
    __slots__ = ("outcome", "delay_seconds")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    outcome: _resources_pb2.CallOutcome
    delay_seconds: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., delay_seconds: _Optional[_Iterable[int]] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("outcome_retries",)
    OUTCOME_RETRIES_FIELD_NUMBER: _ClassVar[int]
    outcome_retries: _containers.RepeatedCompositeFieldContainer[OutcomeRetry]
    def __init__(self, outcome_retries: _Optional[_Iterable[_Union[OutcomeRetry, _Mapping]]] = ...) -> None: ...

class AttemptCount(_message.Message):
    __slots__ = ("attempts", "contacts")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    contacts: int
    def __init__(self, attempts: _Optional[int] = ..., contacts: _Optional[int] = ...) -> None: ...

class OutcomeByAttempt(_message.Message):
    __slots__ = ("attempt_number", "outcome", "count")
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    attempt_number: int
    outcome: _resources_pb2.CallOutcome
    count: int
    def __init__(self, attempt_number: _Optional[int] = ..., outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., count: _Optional[int] = ...) -> None: ...

class BatchStats(_message.Message):
    __slots__ = ("total_contacts", "pending", "queued", "dialing", "connected", "completed", "failed", "invalid_number", "blocked", "carrier_error", "cancelled", "suppressed", "successful", "success_rate", "failed_total", "failure_rate", "processing", "attempts_total", "connected_calls", "total_duration_seconds", "average_duration_seconds", "estimated_completion_time", "estimated_cost_micros", "cost_micros", "attempts_histogram", "outcomes_by_attempt", "waiting_for_window", "retries_pending", "human_answers", "pickup_rate", "machine_answers")
    TOTAL_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    DIALING_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    INVALID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    CARRIER_ERROR_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    FAILED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_TIME_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_BY_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_WINDOW_FIELD_NUMBER: _ClassVar[int]
    RETRIES_PENDING_FIELD_NUMBER: _ClassVar[int]
    HUMAN_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    PICKUP_RATE_FIELD_NUMBER: _ClassVar[int]
    MACHINE_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    total_contacts: int
    pending: int
    queued: int
    dialing: int
    connected: int
    completed: int
    failed: int
    invalid_number: int
    blocked: int
    carrier_error: int
    cancelled: int
    suppressed: int
    successful: int
    success_rate: float
    failed_total: int
    failure_rate: float
    processing: int
    attempts_total: int
    connected_calls: int
    total_duration_seconds: float
    average_duration_seconds: float
    estimated_completion_time: _timestamp_pb2.Timestamp
    estimated_cost_micros: int
    cost_micros: int
    attempts_histogram: _containers.RepeatedCompositeFieldContainer[AttemptCount]
    outcomes_by_attempt: _containers.RepeatedCompositeFieldContainer[OutcomeByAttempt]
    waiting_for_window: int
    retries_pending: int
    human_answers: int
    pickup_rate: float
    machine_answers: int
    def __init__(self, total_contacts: _Optional[int] = ..., pending: _Optional[int] = ..., queued: _Optional[int] = ..., dialing: _Optional[int] = ..., connected: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., invalid_number: _Optional[int] = ..., blocked: _Optional[int] = ..., carrier_error: _Optional[int] = ..., cancelled: _Optional[int] = ..., suppressed: _Optional[int] = ..., successful: _Optional[int] = ..., success_rate: _Optional[float] = ..., failed_total: _Optional[int] = ..., failure_rate: _Optional[float] = ..., processing: _Optional[int] = ..., attempts_total: _Optional[int] = ..., connected_calls: _Optional[int] = ..., total_duration_seconds: _Optional[float] = ..., average_duration_seconds: _Optional[float] = ..., estimated_completion_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., estimated_cost_micros: _Optional[int] = ..., cost_micros: _Optional[int] = ..., attempts_histogram: _Optional[_Iterable[_Union[AttemptCount, _Mapping]]] = ..., outcomes_by_attempt: _Optional[_Iterable[_Union[OutcomeByAttempt, _Mapping]]] = ..., waiting_for_window: _Optional[int] = ..., retries_pending: _Optional[int] = ..., human_answers: _Optional[int] = ..., pickup_rate: _Optional[float] = ..., machine_answers: _Optional[int] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("attempt_number", "outcome", "start_time", "answer_time", "end_time", "duration_seconds", "provider_call_id", "recording_uri", "transcript", "sip_code", "dialer_id", "cost_micros", "attempt_id", "result", "agent_answer_delay_ms", "agent_sip_code")
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    DIALER_ID_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWER_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    attempt_number: int
    outcome: _resources_pb2.CallOutcome
    start_time: _timestamp_pb2.Timestamp
    answer_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    duration_seconds: float
    provider_call_id: str
    recording_uri: str
    transcript: str
    sip_code: int
    dialer_id: str
    cost_micros: int
    attempt_id: str
    result: CallResult
    agent_answer_delay_ms: int
    agent_sip_code: int
    def __init__(self, attempt_number: _Optional[int] = ..., outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., provider_call_id: _Optional[str] = ..., recording_uri: _Optional[str] = ..., transcript: _Optional[str] = ..., sip_code: _Optional[int] = ..., dialer_id: _Optional[str] = ..., cost_micros: _Optional[int] = ..., attempt_id: _Optional[str] = ..., result: _Optional[_Union[CallResult, _Mapping]] = ..., agent_answer_delay_ms: _Optional[int] = ..., agent_sip_code: _Optional[int] = ...) -> None: ...

class ExtractedField(_message.Message):
    __slots__ = ("name", "string_value", "number_value", "bool_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    string_value: str
    number_value: float
    bool_value: bool
    def __init__(self, name: _Optional[str] = ..., string_value: _Optional[str] = ..., number_value: _Optional[float] = ..., bool_value: bool = ...) -> None: ...

class CallResult(_message.Message):
    __slots__ = ("disposition", "answered_by", "callback_time", "transcript", "recording_uri", "summary", "extracted_fields", "report_time")
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EXTRACTED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REPORT_TIME_FIELD_NUMBER: _ClassVar[int]
    disposition: CallDisposition
    answered_by: AnsweredBy
    callback_time: _timestamp_pb2.Timestamp
    transcript: str
    recording_uri: str
    summary: str
    extracted_fields: _containers.RepeatedCompositeFieldContainer[ExtractedField]
    report_time: _timestamp_pb2.Timestamp
    def __init__(self, disposition: _Optional[_Union[CallDisposition, str]] = ..., answered_by: _Optional[_Union[AnsweredBy, str]] = ..., callback_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transcript: _Optional[str] = ..., recording_uri: _Optional[str] = ..., summary: _Optional[str] = ..., extracted_fields: _Optional[_Iterable[_Union[ExtractedField, _Mapping]]] = ..., report_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Contact(_message.Message):
    __slots__ = ("name", "contact_id", "display_name", "phone_number", "email", "variables", "status", "attempts", "max_attempts", "last_outcome", "failure_reason", "last_attempt_time", "next_attempt_time", "duration_seconds", "call_start_time", "call_end_time", "recording_uri", "transcript", "row_number", "timezones", "timezone_fallback", "wait_reason", "attempt_details", "cost_micros", "result", "consent_time", "consent_source", "callability")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CALL_START_TIME_FIELD_NUMBER: _ClassVar[int]
    CALL_END_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    ROW_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIMEZONES_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    WAIT_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CONSENT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CALLABILITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact_id: str
    display_name: str
    phone_number: str
    email: str
    variables: _containers.ScalarMap[str, str]
    status: _resources_pb2.ContactStatus
    attempts: int
    max_attempts: int
    last_outcome: _resources_pb2.CallOutcome
    failure_reason: str
    last_attempt_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    duration_seconds: float
    call_start_time: _timestamp_pb2.Timestamp
    call_end_time: _timestamp_pb2.Timestamp
    recording_uri: str
    transcript: str
    row_number: int
    timezones: _containers.RepeatedScalarFieldContainer[str]
    timezone_fallback: bool
    wait_reason: str
    attempt_details: _containers.RepeatedCompositeFieldContainer[Attempt]
    cost_micros: int
    result: CallResult
    consent_time: _timestamp_pb2.Timestamp
    consent_source: str
    callability: _compliance_pb2.Callability
    def __init__(self, name: _Optional[str] = ..., contact_id: _Optional[str] = ..., display_name: _Optional[str] = ..., phone_number: _Optional[str] = ..., email: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[_resources_pb2.ContactStatus, str]] = ..., attempts: _Optional[int] = ..., max_attempts: _Optional[int] = ..., last_outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., failure_reason: _Optional[str] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., call_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., call_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recording_uri: _Optional[str] = ..., transcript: _Optional[str] = ..., row_number: _Optional[int] = ..., timezones: _Optional[_Iterable[str]] = ..., timezone_fallback: bool = ..., wait_reason: _Optional[str] = ..., attempt_details: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., cost_micros: _Optional[int] = ..., result: _Optional[_Union[CallResult, _Mapping]] = ..., consent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consent_source: _Optional[str] = ..., callability: _Optional[_Union[_compliance_pb2.Callability, _Mapping]] = ...) -> None: ...

class InvalidRow(_message.Message):
    __slots__ = ("row_number", "reason", "value")
    ROW_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    row_number: int
    reason: str
    value: str
    def __init__(self, row_number: _Optional[int] = ..., reason: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class DuplicateRow(_message.Message):
    __slots__ = ("row_number", "duplicate_of_row", "phone_number")
    ROW_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_OF_ROW_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    row_number: int
    duplicate_of_row: int
    phone_number: str
    def __init__(self, row_number: _Optional[int] = ..., duplicate_of_row: _Optional[int] = ..., phone_number: _Optional[str] = ...) -> None: ...

class SuppressedRow(_message.Message):
    __slots__ = ("row_number", "phone_number", "reason")
    ROW_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    row_number: int
    phone_number: str
    reason: str
    def __init__(self, row_number: _Optional[int] = ..., phone_number: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ValidationReport(_message.Message):
    __slots__ = ("total_rows", "valid_rows", "invalid_count", "invalid_rows", "duplicate_count", "duplicate_rows", "empty_rows", "normalized_count", "custom_columns", "header_detected", "delimiter", "suppressed_count", "suppressed_rows", "warnings")
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    VALID_ROWS_FIELD_NUMBER: _ClassVar[int]
    INVALID_COUNT_FIELD_NUMBER: _ClassVar[int]
    INVALID_ROWS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_ROWS_FIELD_NUMBER: _ClassVar[int]
    EMPTY_ROWS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    HEADER_DETECTED_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_ROWS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    total_rows: int
    valid_rows: int
    invalid_count: int
    invalid_rows: _containers.RepeatedCompositeFieldContainer[InvalidRow]
    duplicate_count: int
    duplicate_rows: _containers.RepeatedCompositeFieldContainer[DuplicateRow]
    empty_rows: int
    normalized_count: int
    custom_columns: _containers.RepeatedScalarFieldContainer[str]
    header_detected: bool
    delimiter: str
    suppressed_count: int
    suppressed_rows: _containers.RepeatedCompositeFieldContainer[SuppressedRow]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, total_rows: _Optional[int] = ..., valid_rows: _Optional[int] = ..., invalid_count: _Optional[int] = ..., invalid_rows: _Optional[_Iterable[_Union[InvalidRow, _Mapping]]] = ..., duplicate_count: _Optional[int] = ..., duplicate_rows: _Optional[_Iterable[_Union[DuplicateRow, _Mapping]]] = ..., empty_rows: _Optional[int] = ..., normalized_count: _Optional[int] = ..., custom_columns: _Optional[_Iterable[str]] = ..., header_detected: bool = ..., delimiter: _Optional[str] = ..., suppressed_count: _Optional[int] = ..., suppressed_rows: _Optional[_Iterable[_Union[SuppressedRow, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class CostEstimate(_message.Message):
    __slots__ = ("contacts", "assumed_minutes_per_call", "rate_micros_per_minute", "estimated_cost_micros")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    ASSUMED_MINUTES_PER_CALL_FIELD_NUMBER: _ClassVar[int]
    RATE_MICROS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    contacts: int
    assumed_minutes_per_call: float
    rate_micros_per_minute: int
    estimated_cost_micros: int
    def __init__(self, contacts: _Optional[int] = ..., assumed_minutes_per_call: _Optional[float] = ..., rate_micros_per_minute: _Optional[int] = ..., estimated_cost_micros: _Optional[int] = ...) -> None: ...

import datetime

from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartAttemptDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    START_ATTEMPT_DECISION_UNSPECIFIED: _ClassVar[StartAttemptDecision]
    START_ATTEMPT_DECISION_GRANTED: _ClassVar[StartAttemptDecision]
    START_ATTEMPT_DECISION_STALE: _ClassVar[StartAttemptDecision]
    START_ATTEMPT_DECISION_BATCH_NOT_RUNNING: _ClassVar[StartAttemptDecision]
    START_ATTEMPT_DECISION_DEFERRED: _ClassVar[StartAttemptDecision]
    START_ATTEMPT_DECISION_SUPPRESSED: _ClassVar[StartAttemptDecision]
START_ATTEMPT_DECISION_UNSPECIFIED: StartAttemptDecision
START_ATTEMPT_DECISION_GRANTED: StartAttemptDecision
START_ATTEMPT_DECISION_STALE: StartAttemptDecision
START_ATTEMPT_DECISION_BATCH_NOT_RUNNING: StartAttemptDecision
START_ATTEMPT_DECISION_DEFERRED: StartAttemptDecision
START_ATTEMPT_DECISION_SUPPRESSED: StartAttemptDecision

class StartAttemptRequest(_message.Message):
    __slots__ = ("organization_id", "batch_id", "contact_id", "fencing_token", "lease_id", "dialer_id", "provider_call_id")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    DIALER_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    batch_id: str
    contact_id: str
    fencing_token: int
    lease_id: str
    dialer_id: str
    provider_call_id: str
    def __init__(self, organization_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., lease_id: _Optional[str] = ..., dialer_id: _Optional[str] = ..., provider_call_id: _Optional[str] = ...) -> None: ...

class StartAttemptResponse(_message.Message):
    __slots__ = ("decision", "reason", "attempt_id", "attempt_number", "phone_number", "from_phone_number", "outbound_trunk", "agent_id", "contact_name", "variables", "max_call_duration_seconds", "recording_enabled", "transcript_enabled", "dial_deadline_time", "next_attempt_time", "start_time", "agent_sip_connection", "organization_calls_per_second")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FROM_PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_TRUNK_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_NAME_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    MAX_CALL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ENABLED_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    DIAL_DEADLINE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    AGENT_SIP_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    decision: StartAttemptDecision
    reason: str
    attempt_id: str
    attempt_number: int
    phone_number: str
    from_phone_number: str
    outbound_trunk: _resources_pb2.OutboundTrunk
    agent_id: str
    contact_name: str
    variables: _containers.ScalarMap[str, str]
    max_call_duration_seconds: int
    recording_enabled: bool
    transcript_enabled: bool
    dial_deadline_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    agent_sip_connection: _resources_pb2.AgentSipConnection
    organization_calls_per_second: float
    def __init__(self, decision: _Optional[_Union[StartAttemptDecision, str]] = ..., reason: _Optional[str] = ..., attempt_id: _Optional[str] = ..., attempt_number: _Optional[int] = ..., phone_number: _Optional[str] = ..., from_phone_number: _Optional[str] = ..., outbound_trunk: _Optional[_Union[_resources_pb2.OutboundTrunk, _Mapping]] = ..., agent_id: _Optional[str] = ..., contact_name: _Optional[str] = ..., variables: _Optional[_Mapping[str, str]] = ..., max_call_duration_seconds: _Optional[int] = ..., recording_enabled: bool = ..., transcript_enabled: bool = ..., dial_deadline_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agent_sip_connection: _Optional[_Union[_resources_pb2.AgentSipConnection, _Mapping]] = ..., organization_calls_per_second: _Optional[float] = ...) -> None: ...

class MarkAnsweredRequest(_message.Message):
    __slots__ = ("attempt_id", "fencing_token", "answer_time")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    fencing_token: int
    answer_time: _timestamp_pb2.Timestamp
    def __init__(self, attempt_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MarkAnsweredResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FinishAttemptRequest(_message.Message):
    __slots__ = ("attempt_id", "fencing_token", "outcome", "answer_time", "end_time", "duration_seconds", "sip_code", "recording_uri", "transcript", "closed_by", "detail", "agent_answer_delay_ms", "agent_sip_code")
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_BY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWER_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    attempt_id: str
    fencing_token: int
    outcome: _resources_pb2.CallOutcome
    answer_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    duration_seconds: float
    sip_code: int
    recording_uri: str
    transcript: str
    closed_by: str
    detail: str
    agent_answer_delay_ms: int
    agent_sip_code: int
    def __init__(self, attempt_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., sip_code: _Optional[int] = ..., recording_uri: _Optional[str] = ..., transcript: _Optional[str] = ..., closed_by: _Optional[str] = ..., detail: _Optional[str] = ..., agent_answer_delay_ms: _Optional[int] = ..., agent_sip_code: _Optional[int] = ...) -> None: ...

class FinishAttemptResponse(_message.Message):
    __slots__ = ("contact_status", "next_attempt_time", "batch_status")
    CONTACT_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    BATCH_STATUS_FIELD_NUMBER: _ClassVar[int]
    contact_status: _resources_pb2.ContactStatus
    next_attempt_time: _timestamp_pb2.Timestamp
    batch_status: _resources_pb2.BatchStatus
    def __init__(self, contact_status: _Optional[_Union[_resources_pb2.ContactStatus, str]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., batch_status: _Optional[_Union[_resources_pb2.BatchStatus, str]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "reason", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    message: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BatchStartAttemptsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[StartAttemptRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[StartAttemptRequest, _Mapping]]] = ...) -> None: ...

class BatchStartAttemptsResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[StartAttemptResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[StartAttemptResponse, _Mapping]]] = ...) -> None: ...

class BatchMarkAnsweredRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[MarkAnsweredRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[MarkAnsweredRequest, _Mapping]]] = ...) -> None: ...

class BatchMarkAnsweredResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ItemError]
    def __init__(self, results: _Optional[_Iterable[_Union[ItemError, _Mapping]]] = ...) -> None: ...

class BatchFinishAttemptsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[FinishAttemptRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[FinishAttemptRequest, _Mapping]]] = ...) -> None: ...

class FinishAttemptResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: FinishAttemptResponse
    error: ItemError
    def __init__(self, response: _Optional[_Union[FinishAttemptResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class BatchFinishAttemptsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[FinishAttemptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[FinishAttemptResult, _Mapping]]] = ...) -> None: ...

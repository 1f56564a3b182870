import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATUS_UNSPECIFIED: _ClassVar[BatchStatus]
    BATCH_STATUS_PENDING: _ClassVar[BatchStatus]
    BATCH_STATUS_SCHEDULED: _ClassVar[BatchStatus]
    BATCH_STATUS_RUNNING: _ClassVar[BatchStatus]
    BATCH_STATUS_PAUSED: _ClassVar[BatchStatus]
    BATCH_STATUS_COMPLETED: _ClassVar[BatchStatus]
    BATCH_STATUS_FAILED: _ClassVar[BatchStatus]
    BATCH_STATUS_CANCELLED: _ClassVar[BatchStatus]

class ContactStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_STATUS_UNSPECIFIED: _ClassVar[ContactStatus]
    CONTACT_STATUS_PENDING: _ClassVar[ContactStatus]
    CONTACT_STATUS_QUEUED: _ClassVar[ContactStatus]
    CONTACT_STATUS_DIALING: _ClassVar[ContactStatus]
    CONTACT_STATUS_CONNECTED: _ClassVar[ContactStatus]
    CONTACT_STATUS_COMPLETED: _ClassVar[ContactStatus]
    CONTACT_STATUS_FAILED: _ClassVar[ContactStatus]
    CONTACT_STATUS_BUSY: _ClassVar[ContactStatus]
    CONTACT_STATUS_NO_ANSWER: _ClassVar[ContactStatus]
    CONTACT_STATUS_TIMEOUT: _ClassVar[ContactStatus]
    CONTACT_STATUS_INVALID_NUMBER: _ClassVar[ContactStatus]
    CONTACT_STATUS_BLOCKED: _ClassVar[ContactStatus]
    CONTACT_STATUS_CARRIER_ERROR: _ClassVar[ContactStatus]
    CONTACT_STATUS_CANCELLED: _ClassVar[ContactStatus]
    CONTACT_STATUS_SUPPRESSED: _ClassVar[ContactStatus]

class CallOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_OUTCOME_UNSPECIFIED: _ClassVar[CallOutcome]
    CALL_OUTCOME_COMPLETED: _ClassVar[CallOutcome]
    CALL_OUTCOME_NO_ANSWER: _ClassVar[CallOutcome]
    CALL_OUTCOME_BUSY: _ClassVar[CallOutcome]
    CALL_OUTCOME_TIMEOUT: _ClassVar[CallOutcome]
    CALL_OUTCOME_INVALID_NUMBER: _ClassVar[CallOutcome]
    CALL_OUTCOME_BLOCKED: _ClassVar[CallOutcome]
    CALL_OUTCOME_CARRIER_ERROR: _ClassVar[CallOutcome]
    CALL_OUTCOME_AGENT_ERROR: _ClassVar[CallOutcome]
    CALL_OUTCOME_DIALER_LOST: _ClassVar[CallOutcome]
    CALL_OUTCOME_NOT_DIALED: _ClassVar[CallOutcome]
    CALL_OUTCOME_VOICEMAIL: _ClassVar[CallOutcome]

class AgentArchitecture(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_ARCHITECTURE_UNSPECIFIED: _ClassVar[AgentArchitecture]
    AGENT_ARCHITECTURE_PIPELINE: _ClassVar[AgentArchitecture]
    AGENT_ARCHITECTURE_REALTIME: _ClassVar[AgentArchitecture]
    AGENT_ARCHITECTURE_TEXT: _ClassVar[AgentArchitecture]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_OWNER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
    ROLE_MEMBER: _ClassVar[Role]
    ROLE_REPORTER: _ClassVar[Role]

class CallingWindowMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALLING_WINDOW_MODE_UNSPECIFIED: _ClassVar[CallingWindowMode]
    CALLING_WINDOW_MODE_NONE: _ClassVar[CallingWindowMode]
    CALLING_WINDOW_MODE_CUSTOM: _ClassVar[CallingWindowMode]

class SipTransport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIP_TRANSPORT_UNSPECIFIED: _ClassVar[SipTransport]
    SIP_TRANSPORT_UDP: _ClassVar[SipTransport]
    SIP_TRANSPORT_TCP: _ClassVar[SipTransport]
    SIP_TRANSPORT_TLS: _ClassVar[SipTransport]

class TrunkKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRUNK_KIND_UNSPECIFIED: _ClassVar[TrunkKind]
    TRUNK_KIND_SIMULATED: _ClassVar[TrunkKind]
    TRUNK_KIND_SIP: _ClassVar[TrunkKind]

class CallerIdFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALLER_ID_FORMAT_UNSPECIFIED: _ClassVar[CallerIdFormat]
    CALLER_ID_FORMAT_E164: _ClassVar[CallerIdFormat]
    CALLER_ID_FORMAT_E164_NO_PLUS: _ClassVar[CallerIdFormat]
    CALLER_ID_FORMAT_NATIONAL: _ClassVar[CallerIdFormat]
BATCH_STATUS_UNSPECIFIED: BatchStatus
BATCH_STATUS_PENDING: BatchStatus
BATCH_STATUS_SCHEDULED: BatchStatus
BATCH_STATUS_RUNNING: BatchStatus
BATCH_STATUS_PAUSED: BatchStatus
BATCH_STATUS_COMPLETED: BatchStatus
BATCH_STATUS_FAILED: BatchStatus
BATCH_STATUS_CANCELLED: BatchStatus
CONTACT_STATUS_UNSPECIFIED: ContactStatus
CONTACT_STATUS_PENDING: ContactStatus
CONTACT_STATUS_QUEUED: ContactStatus
CONTACT_STATUS_DIALING: ContactStatus
CONTACT_STATUS_CONNECTED: ContactStatus
CONTACT_STATUS_COMPLETED: ContactStatus
CONTACT_STATUS_FAILED: ContactStatus
CONTACT_STATUS_BUSY: ContactStatus
CONTACT_STATUS_NO_ANSWER: ContactStatus
CONTACT_STATUS_TIMEOUT: ContactStatus
CONTACT_STATUS_INVALID_NUMBER: ContactStatus
CONTACT_STATUS_BLOCKED: ContactStatus
CONTACT_STATUS_CARRIER_ERROR: ContactStatus
CONTACT_STATUS_CANCELLED: ContactStatus
CONTACT_STATUS_SUPPRESSED: ContactStatus
CALL_OUTCOME_UNSPECIFIED: CallOutcome
CALL_OUTCOME_COMPLETED: CallOutcome
CALL_OUTCOME_NO_ANSWER: CallOutcome
CALL_OUTCOME_BUSY: CallOutcome
CALL_OUTCOME_TIMEOUT: CallOutcome
CALL_OUTCOME_INVALID_NUMBER: CallOutcome
CALL_OUTCOME_BLOCKED: CallOutcome
CALL_OUTCOME_CARRIER_ERROR: CallOutcome
CALL_OUTCOME_AGENT_ERROR: CallOutcome
CALL_OUTCOME_DIALER_LOST: CallOutcome
CALL_OUTCOME_NOT_DIALED: CallOutcome
CALL_OUTCOME_VOICEMAIL: CallOutcome
AGENT_ARCHITECTURE_UNSPECIFIED: AgentArchitecture
AGENT_ARCHITECTURE_PIPELINE: AgentArchitecture
AGENT_ARCHITECTURE_REALTIME: AgentArchitecture
AGENT_ARCHITECTURE_TEXT: AgentArchitecture
ROLE_UNSPECIFIED: Role
ROLE_OWNER: Role
ROLE_ADMIN: Role
ROLE_MEMBER: Role
ROLE_REPORTER: Role
CALLING_WINDOW_MODE_UNSPECIFIED: CallingWindowMode
CALLING_WINDOW_MODE_NONE: CallingWindowMode
CALLING_WINDOW_MODE_CUSTOM: CallingWindowMode
SIP_TRANSPORT_UNSPECIFIED: SipTransport
SIP_TRANSPORT_UDP: SipTransport
SIP_TRANSPORT_TCP: SipTransport
SIP_TRANSPORT_TLS: SipTransport
TRUNK_KIND_UNSPECIFIED: TrunkKind
TRUNK_KIND_SIMULATED: TrunkKind
TRUNK_KIND_SIP: TrunkKind
CALLER_ID_FORMAT_UNSPECIFIED: CallerIdFormat
CALLER_ID_FORMAT_E164: CallerIdFormat
CALLER_ID_FORMAT_E164_NO_PLUS: CallerIdFormat
CALLER_ID_FORMAT_NATIONAL: CallerIdFormat

class CallingWindow(_message.Message):
    __slots__ = ("start_local_time", "end_local_time", "weekdays")
    START_LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    END_LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    start_local_time: str
    end_local_time: str
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, start_local_time: _Optional[str] = ..., end_local_time: _Optional[str] = ..., weekdays: _Optional[_Iterable[int]] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("name", "agent_id", "display_name", "architecture", "active", "recording_enabled", "transcript_enabled", "create_time", "update_time", "sip_connection")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    RECORDING_ENABLED_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIP_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    agent_id: str
    display_name: str
    architecture: AgentArchitecture
    active: bool
    recording_enabled: bool
    transcript_enabled: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    sip_connection: AgentSipConnection
    def __init__(self, name: _Optional[str] = ..., agent_id: _Optional[str] = ..., display_name: _Optional[str] = ..., architecture: _Optional[_Union[AgentArchitecture, str]] = ..., active: bool = ..., recording_enabled: bool = ..., transcript_enabled: bool = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sip_connection: _Optional[_Union[AgentSipConnection, _Mapping]] = ...) -> None: ...

class AgentSipConnection(_message.Message):
    __slots__ = ("uri", "scheme", "user", "host", "port", "transport", "username", "password", "password_set", "header_fields")
    URI_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELDS_FIELD_NUMBER: _ClassVar[int]
    uri: str
    scheme: str
    user: str
    host: str
    port: int
    transport: str
    username: str
    password: str
    password_set: bool
    header_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, uri: _Optional[str] = ..., scheme: _Optional[str] = ..., user: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., password_set: bool = ..., header_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class SimulationProfile(_message.Message):
    __slots__ = ("weight_completed", "weight_no_answer", "weight_busy", "weight_timeout", "weight_invalid_number", "weight_blocked", "weight_carrier_error", "weight_agent_error", "mean_call_seconds", "ring_seconds", "weight_voicemail")
    WEIGHT_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_NO_ANSWER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BUSY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_INVALID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BLOCKED_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_CARRIER_ERROR_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_AGENT_ERROR_FIELD_NUMBER: _ClassVar[int]
    MEAN_CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_VOICEMAIL_FIELD_NUMBER: _ClassVar[int]
    weight_completed: float
    weight_no_answer: float
    weight_busy: float
    weight_timeout: float
    weight_invalid_number: float
    weight_blocked: float
    weight_carrier_error: float
    weight_agent_error: float
    mean_call_seconds: float
    ring_seconds: float
    weight_voicemail: float
    def __init__(self, weight_completed: _Optional[float] = ..., weight_no_answer: _Optional[float] = ..., weight_busy: _Optional[float] = ..., weight_timeout: _Optional[float] = ..., weight_invalid_number: _Optional[float] = ..., weight_blocked: _Optional[float] = ..., weight_carrier_error: _Optional[float] = ..., weight_agent_error: _Optional[float] = ..., mean_call_seconds: _Optional[float] = ..., ring_seconds: _Optional[float] = ..., weight_voicemail: _Optional[float] = ...) -> None: ...

class OutboundTrunk(_message.Message):
    __slots__ = ("kind", "host", "port", "transport", "username", "password", "password_set", "caller_id_format", "simulation", "calls_per_second")
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    CALLER_ID_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    kind: TrunkKind
    host: str
    port: int
    transport: SipTransport
    username: str
    password: str
    password_set: bool
    caller_id_format: CallerIdFormat
    simulation: SimulationProfile
    calls_per_second: float
    def __init__(self, kind: _Optional[_Union[TrunkKind, str]] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[_Union[SipTransport, str]] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., password_set: bool = ..., caller_id_format: _Optional[_Union[CallerIdFormat, str]] = ..., simulation: _Optional[_Union[SimulationProfile, _Mapping]] = ..., calls_per_second: _Optional[float] = ...) -> None: ...

class TrunkPacingState(_message.Message):
    __slots__ = ("effective_calls_per_second", "throttled", "throttled_until_time", "consecutive_pushbacks", "last_pushback_time")
    EFFECTIVE_CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_FIELD_NUMBER: _ClassVar[int]
    THROTTLED_UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_PUSHBACKS_FIELD_NUMBER: _ClassVar[int]
    LAST_PUSHBACK_TIME_FIELD_NUMBER: _ClassVar[int]
    effective_calls_per_second: float
    throttled: bool
    throttled_until_time: _timestamp_pb2.Timestamp
    consecutive_pushbacks: int
    last_pushback_time: _timestamp_pb2.Timestamp
    def __init__(self, effective_calls_per_second: _Optional[float] = ..., throttled: bool = ..., throttled_until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consecutive_pushbacks: _Optional[int] = ..., last_pushback_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PhoneNumber(_message.Message):
    __slots__ = ("name", "phone_number_id", "phone_number", "display_name", "outbound_trunk", "create_time", "pacing_state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_TRUNK_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PACING_STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    phone_number_id: str
    phone_number: str
    display_name: str
    outbound_trunk: OutboundTrunk
    create_time: _timestamp_pb2.Timestamp
    pacing_state: TrunkPacingState
    def __init__(self, name: _Optional[str] = ..., phone_number_id: _Optional[str] = ..., phone_number: _Optional[str] = ..., display_name: _Optional[str] = ..., outbound_trunk: _Optional[_Union[OutboundTrunk, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pacing_state: _Optional[_Union[TrunkPacingState, _Mapping]] = ...) -> None: ...

import datetime

from batchcalls.v1 import batch_pb2 as _batch_pb2
from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportCallResultRequest(_message.Message):
    __slots__ = ("provider_call_id", "attempt_id", "result")
    PROVIDER_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    provider_call_id: str
    attempt_id: str
    result: _batch_pb2.CallResult
    def __init__(self, provider_call_id: _Optional[str] = ..., attempt_id: _Optional[str] = ..., result: _Optional[_Union[_batch_pb2.CallResult, _Mapping]] = ...) -> None: ...

class ReportCallResultResponse(_message.Message):
    __slots__ = ("contact", "attempt_id", "result", "duplicate", "contact_status", "next_attempt_time")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    contact: str
    attempt_id: str
    result: _batch_pb2.CallResult
    duplicate: bool
    contact_status: _resources_pb2.ContactStatus
    next_attempt_time: _timestamp_pb2.Timestamp
    def __init__(self, contact: _Optional[str] = ..., attempt_id: _Optional[str] = ..., result: _Optional[_Union[_batch_pb2.CallResult, _Mapping]] = ..., duplicate: bool = ..., contact_status: _Optional[_Union[_resources_pb2.ContactStatus, str]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

import datetime

from batchcalls.v1 import compliance_pb2 as _compliance_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplainCallabilityRequest(_message.Message):
    __slots__ = ("phone_number", "time", "batch")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    time: _timestamp_pb2.Timestamp
    batch: str
    def __init__(self, phone_number: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., batch: _Optional[str] = ...) -> None: ...

class ExplainCallabilityResponse(_message.Message):
    __slots__ = ("callability",)
    CALLABILITY_FIELD_NUMBER: _ClassVar[int]
    callability: _compliance_pb2.Callability
    def __init__(self, callability: _Optional[_Union[_compliance_pb2.Callability, _Mapping]] = ...) -> None: ...

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppliedRule(_message.Message):
    __slots__ = ("rule_id", "jurisdiction", "kind", "description", "source", "checked_date", "verified", "blocked")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHECKED_DATE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    jurisdiction: str
    kind: str
    description: str
    source: str
    checked_date: str
    verified: bool
    blocked: bool
    def __init__(self, rule_id: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., checked_date: _Optional[str] = ..., verified: bool = ..., blocked: bool = ...) -> None: ...

class Callability(_message.Message):
    __slots__ = ("allowed", "time", "next_allowed_time", "region_code", "state", "time_zones", "time_zones_fallback", "rules", "reason", "table_version", "jurisdiction_rules_applied")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ALLOWED_TIME_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONES_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONES_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_RULES_APPLIED_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    time: _timestamp_pb2.Timestamp
    next_allowed_time: _timestamp_pb2.Timestamp
    region_code: str
    state: str
    time_zones: _containers.RepeatedScalarFieldContainer[str]
    time_zones_fallback: bool
    rules: _containers.RepeatedCompositeFieldContainer[AppliedRule]
    reason: str
    table_version: str
    jurisdiction_rules_applied: bool
    def __init__(self, allowed: bool = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_allowed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., region_code: _Optional[str] = ..., state: _Optional[str] = ..., time_zones: _Optional[_Iterable[str]] = ..., time_zones_fallback: bool = ..., rules: _Optional[_Iterable[_Union[AppliedRule, _Mapping]]] = ..., reason: _Optional[str] = ..., table_version: _Optional[str] = ..., jurisdiction_rules_applied: bool = ...) -> None: ...

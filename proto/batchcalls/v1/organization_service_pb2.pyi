import datetime

from batchcalls.v1 import batch_pb2 as _batch_pb2
from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Organization(_message.Message):
    __slots__ = ("name", "organization_id", "display_name", "concurrency_limit", "credit_balance_micros", "default_calling_window", "frequency_cap_per_24h", "circuit_breaker_window", "circuit_breaker_threshold", "credits_enforced", "create_time", "calling_any_time", "require_consent", "calls_per_second", "reserved_concurrency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_BALANCE_MICROS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CALLING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_PER_24H_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_BREAKER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_BREAKER_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ENFORCED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CALLING_ANY_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_CONSENT_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    name: str
    organization_id: str
    display_name: str
    concurrency_limit: int
    credit_balance_micros: int
    default_calling_window: _resources_pb2.CallingWindow
    frequency_cap_per_24h: int
    circuit_breaker_window: int
    circuit_breaker_threshold: float
    credits_enforced: bool
    create_time: _timestamp_pb2.Timestamp
    calling_any_time: bool
    require_consent: bool
    calls_per_second: float
    reserved_concurrency: int
    def __init__(self, name: _Optional[str] = ..., organization_id: _Optional[str] = ..., display_name: _Optional[str] = ..., concurrency_limit: _Optional[int] = ..., credit_balance_micros: _Optional[int] = ..., default_calling_window: _Optional[_Union[_resources_pb2.CallingWindow, _Mapping]] = ..., frequency_cap_per_24h: _Optional[int] = ..., circuit_breaker_window: _Optional[int] = ..., circuit_breaker_threshold: _Optional[float] = ..., credits_enforced: bool = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., calling_any_time: bool = ..., require_consent: bool = ..., calls_per_second: _Optional[float] = ..., reserved_concurrency: _Optional[int] = ...) -> None: ...

class GetOrganizationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOrganizationResponse(_message.Message):
    __slots__ = ("organization", "role", "api_key")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    role: _resources_pb2.Role
    api_key: str
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ..., role: _Optional[_Union[_resources_pb2.Role, str]] = ..., api_key: _Optional[str] = ...) -> None: ...

class UpdateOrganizationRequest(_message.Message):
    __slots__ = ("organization", "update_mask")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateOrganizationResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("name", "api_key_id", "display_name", "role", "prefix", "create_time", "last_used_time", "expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    api_key_id: str
    display_name: str
    role: _resources_pb2.Role
    prefix: str
    create_time: _timestamp_pb2.Timestamp
    last_used_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., api_key_id: _Optional[str] = ..., display_name: _Optional[str] = ..., role: _Optional[_Union[_resources_pb2.Role, str]] = ..., prefix: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("display_name", "role", "expire_time")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    role: _resources_pb2.Role
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, display_name: _Optional[str] = ..., role: _Optional[_Union[_resources_pb2.Role, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys", "next_page_token", "total_size")
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    next_page_token: str
    total_size: int
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeleteApiKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteApiKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TopUpCreditsRequest(_message.Message):
    __slots__ = ("amount_micros", "request_id")
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    amount_micros: int
    request_id: str
    def __init__(self, amount_micros: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class TopUpCreditsResponse(_message.Message):
    __slots__ = ("organization",)
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    organization: Organization
    def __init__(self, organization: _Optional[_Union[Organization, _Mapping]] = ...) -> None: ...

class DoNotCallEntry(_message.Message):
    __slots__ = ("phone_number", "reason", "create_time")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, phone_number: _Optional[str] = ..., reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddDoNotCallNumbersRequest(_message.Message):
    __slots__ = ("phone_numbers", "reason")
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, phone_numbers: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class AddDoNotCallNumbersResponse(_message.Message):
    __slots__ = ("added_count", "already_listed_count")
    ADDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_LISTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    added_count: int
    already_listed_count: int
    def __init__(self, added_count: _Optional[int] = ..., already_listed_count: _Optional[int] = ...) -> None: ...

class RemoveDoNotCallNumbersRequest(_message.Message):
    __slots__ = ("phone_numbers",)
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phone_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveDoNotCallNumbersResponse(_message.Message):
    __slots__ = ("removed_count",)
    REMOVED_COUNT_FIELD_NUMBER: _ClassVar[int]
    removed_count: int
    def __init__(self, removed_count: _Optional[int] = ...) -> None: ...

class ListDoNotCallNumbersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "search")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    search: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., search: _Optional[str] = ...) -> None: ...

class ListDoNotCallNumbersResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "total_size")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DoNotCallEntry]
    next_page_token: str
    total_size: int
    def __init__(self, entries: _Optional[_Iterable[_Union[DoNotCallEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ImportDoNotCallNumbersRequest(_message.Message):
    __slots__ = ("csv_content", "filename", "default_region", "reason")
    CSV_CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REGION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    csv_content: bytes
    filename: str
    default_region: str
    reason: str
    def __init__(self, csv_content: _Optional[bytes] = ..., filename: _Optional[str] = ..., default_region: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ImportDoNotCallNumbersResponse(_message.Message):
    __slots__ = ("added_count", "already_listed_count", "report")
    ADDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_LISTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    added_count: int
    already_listed_count: int
    report: _batch_pb2.ValidationReport
    def __init__(self, added_count: _Optional[int] = ..., already_listed_count: _Optional[int] = ..., report: _Optional[_Union[_batch_pb2.ValidationReport, _Mapping]] = ...) -> None: ...

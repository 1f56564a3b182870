import datetime

from batchcalls.v1 import batch_pb2 as _batch_pb2
from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FILTER_UNSPECIFIED: _ClassVar[ExportFilter]
    EXPORT_FILTER_ALL: _ClassVar[ExportFilter]
    EXPORT_FILTER_SUCCESSFUL: _ClassVar[ExportFilter]
    EXPORT_FILTER_FAILED: _ClassVar[ExportFilter]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PDF: _ClassVar[ExportFormat]
EXPORT_FILTER_UNSPECIFIED: ExportFilter
EXPORT_FILTER_ALL: ExportFilter
EXPORT_FILTER_SUCCESSFUL: ExportFilter
EXPORT_FILTER_FAILED: ExportFilter
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_PDF: ExportFormat

class ValidateContactsRequest(_message.Message):
    __slots__ = ("csv_content", "filename", "default_region")
    CSV_CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REGION_FIELD_NUMBER: _ClassVar[int]
    csv_content: bytes
    filename: str
    default_region: str
    def __init__(self, csv_content: _Optional[bytes] = ..., filename: _Optional[str] = ..., default_region: _Optional[str] = ...) -> None: ...

class ValidateContactsResponse(_message.Message):
    __slots__ = ("report", "cost_estimate")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    COST_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    report: _batch_pb2.ValidationReport
    cost_estimate: _batch_pb2.CostEstimate
    def __init__(self, report: _Optional[_Union[_batch_pb2.ValidationReport, _Mapping]] = ..., cost_estimate: _Optional[_Union[_batch_pb2.CostEstimate, _Mapping]] = ...) -> None: ...

class CreateBatchRequest(_message.Message):
    __slots__ = ("request_id", "display_name", "description", "agent", "from_phone_number", "concurrency_limit", "max_attempts", "scheduled_start_time", "scheduled_local_time", "timezone", "csv_content", "filename", "default_region", "calling_window_mode", "calling_window", "max_call_duration_seconds", "retry_policy", "voicemail_action")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    FROM_PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CSV_CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REGION_FIELD_NUMBER: _ClassVar[int]
    CALLING_WINDOW_MODE_FIELD_NUMBER: _ClassVar[int]
    CALLING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MAX_CALL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    VOICEMAIL_ACTION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    display_name: str
    description: str
    agent: str
    from_phone_number: str
    concurrency_limit: int
    max_attempts: int
    scheduled_start_time: _timestamp_pb2.Timestamp
    scheduled_local_time: str
    timezone: str
    csv_content: bytes
    filename: str
    default_region: str
    calling_window_mode: _resources_pb2.CallingWindowMode
    calling_window: _resources_pb2.CallingWindow
    max_call_duration_seconds: int
    retry_policy: _batch_pb2.RetryPolicy
    voicemail_action: _batch_pb2.VoicemailAction
    def __init__(self, request_id: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., agent: _Optional[str] = ..., from_phone_number: _Optional[str] = ..., concurrency_limit: _Optional[int] = ..., max_attempts: _Optional[int] = ..., scheduled_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_local_time: _Optional[str] = ..., timezone: _Optional[str] = ..., csv_content: _Optional[bytes] = ..., filename: _Optional[str] = ..., default_region: _Optional[str] = ..., calling_window_mode: _Optional[_Union[_resources_pb2.CallingWindowMode, str]] = ..., calling_window: _Optional[_Union[_resources_pb2.CallingWindow, _Mapping]] = ..., max_call_duration_seconds: _Optional[int] = ..., retry_policy: _Optional[_Union[_batch_pb2.RetryPolicy, _Mapping]] = ..., voicemail_action: _Optional[_Union[_batch_pb2.VoicemailAction, str]] = ...) -> None: ...

class CreateBatchResponse(_message.Message):
    __slots__ = ("batch", "report", "cost_estimate")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    COST_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    report: _batch_pb2.ValidationReport
    cost_estimate: _batch_pb2.CostEstimate
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ..., report: _Optional[_Union[_batch_pb2.ValidationReport, _Mapping]] = ..., cost_estimate: _Optional[_Union[_batch_pb2.CostEstimate, _Mapping]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "search")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[_resources_pb2.BatchStatus]
    search: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_resources_pb2.BatchStatus, str]]] = ..., search: _Optional[str] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("batches", "next_page_token", "total_size")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[_batch_pb2.Batch]
    next_page_token: str
    total_size: int
    def __init__(self, batches: _Optional[_Iterable[_Union[_batch_pb2.Batch, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListContactsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "statuses", "min_attempts", "max_attempts", "last_attempt_from", "last_attempt_to", "search")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    MIN_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_FROM_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TO_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[_resources_pb2.ContactStatus]
    min_attempts: int
    max_attempts: int
    last_attempt_from: _timestamp_pb2.Timestamp
    last_attempt_to: _timestamp_pb2.Timestamp
    search: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_resources_pb2.ContactStatus, str]]] = ..., min_attempts: _Optional[int] = ..., max_attempts: _Optional[int] = ..., last_attempt_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempt_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., search: _Optional[str] = ...) -> None: ...

class ListContactsResponse(_message.Message):
    __slots__ = ("contacts", "next_page_token", "total_size")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[_batch_pb2.Contact]
    next_page_token: str
    total_size: int
    def __init__(self, contacts: _Optional[_Iterable[_Union[_batch_pb2.Contact, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetContactResponse(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: _batch_pb2.Contact
    def __init__(self, contact: _Optional[_Union[_batch_pb2.Contact, _Mapping]] = ...) -> None: ...

class PauseBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ...) -> None: ...

class ResumeBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ...) -> None: ...

class CancelBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ...) -> None: ...

class DeleteBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteBatchResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RescheduleBatchRequest(_message.Message):
    __slots__ = ("name", "scheduled_start_time", "scheduled_local_time", "timezone")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_START_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    name: str
    scheduled_start_time: _timestamp_pb2.Timestamp
    scheduled_local_time: str
    timezone: str
    def __init__(self, name: _Optional[str] = ..., scheduled_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_local_time: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class RescheduleBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ...) -> None: ...

class WatchBatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ContactChange(_message.Message):
    __slots__ = ("contact", "contact_id", "status", "outcome", "attempts", "phone_number_masked", "event_time")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_MASKED_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    contact: str
    contact_id: str
    status: _resources_pb2.ContactStatus
    outcome: _resources_pb2.CallOutcome
    attempts: int
    phone_number_masked: str
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, contact: _Optional[str] = ..., contact_id: _Optional[str] = ..., status: _Optional[_Union[_resources_pb2.ContactStatus, str]] = ..., outcome: _Optional[_Union[_resources_pb2.CallOutcome, str]] = ..., attempts: _Optional[int] = ..., phone_number_masked: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchBatchResponse(_message.Message):
    __slots__ = ("snapshot", "progress", "contact_change")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_CHANGE_FIELD_NUMBER: _ClassVar[int]
    snapshot: _batch_pb2.Batch
    progress: _batch_pb2.Batch
    contact_change: ContactChange
    def __init__(self, snapshot: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ..., progress: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ..., contact_change: _Optional[_Union[ContactChange, _Mapping]] = ...) -> None: ...

class ExportBatchRequest(_message.Message):
    __slots__ = ("name", "filter", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    filter: ExportFilter
    format: ExportFormat
    def __init__(self, name: _Optional[str] = ..., filter: _Optional[_Union[ExportFilter, str]] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportBatchResponse(_message.Message):
    __slots__ = ("chunk", "content_type", "filename")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    content_type: str
    filename: str
    def __init__(self, chunk: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

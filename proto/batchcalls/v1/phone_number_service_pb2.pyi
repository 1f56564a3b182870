from batchcalls.v1 import resources_pb2 as _resources_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreatePhoneNumberRequest(_message.Message):
    __slots__ = ("phone_number",)
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    phone_number: _resources_pb2.PhoneNumber
    def __init__(self, phone_number: _Optional[_Union[_resources_pb2.PhoneNumber, _Mapping]] = ...) -> None: ...

class CreatePhoneNumberResponse(_message.Message):
    __slots__ = ("phone_number",)
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    phone_number: _resources_pb2.PhoneNumber
    def __init__(self, phone_number: _Optional[_Union[_resources_pb2.PhoneNumber, _Mapping]] = ...) -> None: ...

class GetPhoneNumberRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPhoneNumberResponse(_message.Message):
    __slots__ = ("phone_number",)
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    phone_number: _resources_pb2.PhoneNumber
    def __init__(self, phone_number: _Optional[_Union[_resources_pb2.PhoneNumber, _Mapping]] = ...) -> None: ...

class ListPhoneNumbersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "with_outbound_trunk_only")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WITH_OUTBOUND_TRUNK_ONLY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    with_outbound_trunk_only: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., with_outbound_trunk_only: bool = ...) -> None: ...

class ListPhoneNumbersResponse(_message.Message):
    __slots__ = ("phone_numbers", "next_page_token", "total_size")
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    phone_numbers: _containers.RepeatedCompositeFieldContainer[_resources_pb2.PhoneNumber]
    next_page_token: str
    total_size: int
    def __init__(self, phone_numbers: _Optional[_Iterable[_Union[_resources_pb2.PhoneNumber, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeletePhoneNumberRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePhoneNumberResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdatePhoneNumberRequest(_message.Message):
    __slots__ = ("phone_number", "update_mask")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    phone_number: _resources_pb2.PhoneNumber
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, phone_number: _Optional[_Union[_resources_pb2.PhoneNumber, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePhoneNumberResponse(_message.Message):
    __slots__ = ("phone_number",)
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    phone_number: _resources_pb2.PhoneNumber
    def __init__(self, phone_number: _Optional[_Union[_resources_pb2.PhoneNumber, _Mapping]] = ...) -> None: ...

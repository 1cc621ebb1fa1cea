# ruff: noqa
# fmt: off
# mypy: disable-error-code="type-arg"
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mt5Value(_message.Message):
    __slots__ = ("none", "bool_value", "int_value", "double_value", "string_value", "bytes_value", "list_value", "map_value", "record_value", "rows_value")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    RECORD_VALUE_FIELD_NUMBER: _ClassVar[int]
    ROWS_VALUE_FIELD_NUMBER: _ClassVar[int]
    none: bool
    bool_value: bool
    int_value: int
    double_value: float
    string_value: str
    bytes_value: bytes
    list_value: Mt5List
    map_value: Mt5Map
    record_value: Mt5Record
    rows_value: Mt5Rows
    def __init__(self, none: _Optional[bool] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bytes_value: _Optional[bytes] = ..., list_value: _Optional[_Union[Mt5List, _Mapping]] = ..., map_value: _Optional[_Union[Mt5Map, _Mapping]] = ..., record_value: _Optional[_Union[Mt5Record, _Mapping]] = ..., rows_value: _Optional[_Union[Mt5Rows, _Mapping]] = ...) -> None: ...

class Mt5List(_message.Message):
    __slots__ = ("items", "is_tuple")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    IS_TUPLE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Mt5Value]
    is_tuple: bool
    def __init__(self, items: _Optional[_Iterable[_Union[Mt5Value, _Mapping]]] = ..., is_tuple: _Optional[bool] = ...) -> None: ...

class Mt5Map(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Mt5Entry]
    def __init__(self, entries: _Optional[_Iterable[_Union[Mt5Entry, _Mapping]]] = ...) -> None: ...

class Mt5Entry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: Mt5Value
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Mt5Value, _Mapping]] = ...) -> None: ...

class Mt5Record(_message.Message):
    __slots__ = ("type", "fields", "values")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    type: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedCompositeFieldContainer[Mt5Value]
    def __init__(self, type: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[_Union[Mt5Value, _Mapping]]] = ...) -> None: ...

class Mt5Rows(_message.Message):
    __slots__ = ("fields", "count", "data")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedCompositeFieldContainer[Mt5RowField]
    count: int
    data: bytes
    def __init__(self, fields: _Optional[_Iterable[_Union[Mt5RowField, _Mapping]]] = ..., count: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Mt5RowField(_message.Message):
    __slots__ = ("name", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: str
    def __init__(self, name: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class Mt5CallRequest(_message.Message):
    __slots__ = ("function", "args", "kwargs")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    KWARGS_FIELD_NUMBER: _ClassVar[int]
    function: str
    args: _containers.RepeatedCompositeFieldContainer[Mt5Value]
    kwargs: _containers.RepeatedCompositeFieldContainer[Mt5Entry]
    def __init__(self, function: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Mt5Value, _Mapping]]] = ..., kwargs: _Optional[_Iterable[_Union[Mt5Entry, _Mapping]]] = ...) -> None: ...

class Mt5CallResponse(_message.Message):
    __slots__ = ("result", "error_code", "error_message")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    result: Mt5Value
    error_code: int
    error_message: str
    def __init__(self, result: _Optional[_Union[Mt5Value, _Mapping]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class Mt5ConstantsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Mt5ConstantsResponse(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, int]
    def __init__(self, values: _Optional[_Mapping[str, int]] = ...) -> None: ...

"""Python values of the ``MetaTrader5`` package <-> ``Mt5Value`` messages, both ways.

The package answers with named tuples (``PyStructSequence`` types: ``SymbolInfo``,
``TradePosition``, ``OrderSendResult`` whose ``request`` is a ``TradeRequest`` ...) and numpy
structured arrays (rates, ticks). A named tuple travels as its type's name, field names and
values; the decoder rebuilds a named tuple of the same name and fields, so attribute access,
index access and ``_asdict()`` work as on the package's own objects. Arrays travel as packed
rows with their numpy layout.

Pure: no I/O. A value the package never produces is refused with ``TypeError`` naming its type
(never its content: a request may hold the account's password).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tradefleet_runtime.api.v1 import mt5_bridge_pb2 as pb


def encode(value: Any) -> pb.Mt5Value:
    """One Python value as an ``Mt5Value``."""
    if value is None:
        return pb.Mt5Value(none=True)
    if isinstance(value, np.ndarray):
        return pb.Mt5Value(rows_value=_encode_rows(value))
    if isinstance(value, np.generic):  # numpy scalars (a row's field, np.float64 prices)
        return encode(value.item())
    if isinstance(value, bool):
        return pb.Mt5Value(bool_value=value)
    if isinstance(value, int):
        return pb.Mt5Value(int_value=value)
    if isinstance(value, float):
        return pb.Mt5Value(double_value=value)
    if isinstance(value, str):
        return pb.Mt5Value(string_value=value)
    if isinstance(value, bytes):
        return pb.Mt5Value(bytes_value=value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        fields = [str(name) for name in value._fields]
        return pb.Mt5Value(
            record_value=pb.Mt5Record(
                type=type(value).__name__, fields=fields, values=[encode(item) for item in value]
            )
        )
    if isinstance(value, list | tuple):
        return pb.Mt5Value(
            list_value=pb.Mt5List(
                items=[encode(item) for item in value], is_tuple=isinstance(value, tuple)
            )
        )
    if isinstance(value, Mapping):
        return pb.Mt5Value(map_value=pb.Mt5Map(entries=encode_entries(value)))
    raise TypeError(f"mt5 bridge: cannot carry a value of type {type(value).__name__}")


def encode_entries(values: Mapping[Any, Any]) -> list[pb.Mt5Entry]:
    entries = []
    for key, item in values.items():
        if not isinstance(key, str):
            raise TypeError(f"mt5 bridge: dict keys must be strings, not {type(key).__name__}")
        entries.append(pb.Mt5Entry(key=key, value=encode(item)))
    return entries


def decode(message: pb.Mt5Value) -> Any:
    """The Python value an ``Mt5Value`` carries (an unset value is None)."""
    kind = message.WhichOneof("kind")
    if kind is None or kind == "none":
        return None
    if kind == "bool_value":
        return message.bool_value
    if kind == "int_value":
        return message.int_value
    if kind == "double_value":
        return message.double_value
    if kind == "string_value":
        return message.string_value
    if kind == "bytes_value":
        return message.bytes_value
    if kind == "list_value":
        items = [decode(item) for item in message.list_value.items]
        return tuple(items) if message.list_value.is_tuple else items
    if kind == "map_value":
        return decode_entries(message.map_value.entries)
    if kind == "record_value":
        record = message.record_value
        if len(record.values) != len(record.fields):
            raise TypeError("mt5 bridge: a record needs one value per field")
        cls = record_type(record.type, tuple(record.fields))
        return cls(*(decode(item) for item in record.values))
    return _decode_rows(message.rows_value)


def decode_entries(entries: Sequence[pb.Mt5Entry]) -> dict[str, Any]:
    return {entry.key: decode(entry.value) for entry in entries}


@functools.lru_cache(maxsize=256)
def record_type(name: str, fields: tuple[str, ...]) -> type[tuple[Any, ...]]:
    """The named-tuple class for one of the package's structures (one class per name and
    fields, so equal structures compare and hash alike across calls)."""
    if not name.isidentifier():
        raise TypeError("mt5 bridge: a record's type name must be an identifier")
    try:
        cls: type[tuple[Any, ...]] = collections.namedtuple(name, fields)  # type: ignore[misc]
    except ValueError as error:  # a field name that is no identifier, or twice
        raise TypeError(f"mt5 bridge: bad record fields ({error})") from None
    return cls


def _encode_rows(array: np.ndarray[Any, Any]) -> pb.Mt5Rows:
    if array.dtype.names is None or array.ndim != 1:
        raise TypeError("mt5 bridge: only one-dimensional structured arrays are carried")
    layout = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    fields = [
        pb.Mt5RowField(name=name, format=layout.fields[name][0].newbyteorder("<").str)
        for name in layout.names or ()
    ]
    packed = np.ascontiguousarray(array, dtype=_dtype(fields))
    return pb.Mt5Rows(fields=fields, count=len(packed), data=packed.tobytes())


def _dtype(fields: Sequence[pb.Mt5RowField]) -> np.dtype[Any]:
    try:
        return np.dtype([(field.name, field.format) for field in fields])
    except (TypeError, ValueError) as error:
        raise TypeError(f"mt5 bridge: bad row layout ({error})") from None


def _decode_rows(rows: pb.Mt5Rows) -> np.ndarray[Any, Any]:
    dtype = _dtype(rows.fields)
    if dtype.itemsize * rows.count != len(rows.data):
        raise TypeError("mt5 bridge: packed rows do not match their layout")
    return np.frombuffer(rows.data, dtype=dtype, count=rows.count).copy()


__all__ = ["decode", "decode_entries", "encode", "encode_entries", "record_type"]

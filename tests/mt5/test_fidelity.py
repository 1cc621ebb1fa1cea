"""The emulator's API surface against the real MetaTrader5 wheel.

Two layers: the committed recordings (``constants.py`` and ``signatures.txt``, generated from
the wheel by ``tests/venues/mt5/tools/extract_constants.py``), always checked; and the live
wheel in ``.cache/mt5-wheel/`` (``tests/venues/mt5/tools/fetch_wheel.sh``), checked when present.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tests.venues.mt5 import (
    API_FUNCTIONS,
    ERROR_MESSAGES,
    RATES_DTYPE,
    RETCODE_COMMENTS,
    TICKS_DTYPE,
    MT5Terminal,
)
from tests.venues.mt5 import constants as C
from tests.venues.mt5.structures import STRUCTURES
from tests.venues.mt5.tools import extract_constants as extract

SIGNATURES = Path(extract.SIGNATURES_PATH).read_text("utf-8")


def _section(name: str) -> list[str]:
    body = SIGNATURES.split(f"[{name}]\n", 1)[1]
    lines: list[str] = []
    for line in body.splitlines():
        if line.startswith("["):
            break
        lines.append(line)
    return lines


def _recorded_functions() -> dict[str, list[str]]:
    """name -> parameter names, parsed from lines like
    ``history_deals_get([date_from, date_to, [group="GROUP"]],[position=POSITION],...)``."""
    out: dict[str, list[str]] = {}
    for line in _section("functions"):
        signature = line.split("\t", 1)[0]
        match = re.fullmatch(r"([a-z_]+)\((.*)\)", signature)
        assert match, line
        params = []
        for part in re.sub(r"[\[\]]", ",", match.group(2)).split(","):
            part = part.split("=", 1)[0].strip()
            if part:
                params.append(part)
        out[match.group(1)] = params
    return out


def test_every_constant_has_the_wheel_value() -> None:
    """MetaTrader5 Python reference, constants used by all functions ("ENUM_*" tables; the
    values are those of MetaTrader5/__init__.py, recorded in constants.py).  Every constant is
    an attribute of an emulator instance, as on the module, with the same value."""
    constants = C.all_constants()
    assert len(constants) > 200
    mt5 = MT5Terminal()
    for name, value in constants.items():
        assert getattr(mt5, name) == value, name
    assert mt5.__version__ == C.PACKAGE_VERSION
    with pytest.raises(AttributeError):
        _ = mt5.NO_SUCH_CONSTANT


def test_retcodes_and_key_values() -> None:
    """MQL5 "Trade Server Return Codes" table and ENUM_ORDER_TYPE_FILLING / timeframes."""
    expected = {
        "TRADE_RETCODE_REQUOTE": 10004,
        "TRADE_RETCODE_PLACED": 10008,
        "TRADE_RETCODE_DONE": 10009,
        "TRADE_RETCODE_DONE_PARTIAL": 10010,
        "TRADE_RETCODE_TIMEOUT": 10012,
        "TRADE_RETCODE_INVALID": 10013,
        "TRADE_RETCODE_INVALID_VOLUME": 10014,
        "TRADE_RETCODE_INVALID_PRICE": 10015,
        "TRADE_RETCODE_INVALID_STOPS": 10016,
        "TRADE_RETCODE_TRADE_DISABLED": 10017,
        "TRADE_RETCODE_MARKET_CLOSED": 10018,
        "TRADE_RETCODE_NO_MONEY": 10019,
        "TRADE_RETCODE_PRICE_CHANGED": 10020,
        "TRADE_RETCODE_PRICE_OFF": 10021,
        "TRADE_RETCODE_TOO_MANY_REQUESTS": 10024,
        "TRADE_RETCODE_INVALID_FILL": 10030,
        "TRADE_RETCODE_CONNECTION": 10031,
        "ORDER_FILLING_FOK": 0,
        "ORDER_FILLING_IOC": 1,
        "ORDER_FILLING_RETURN": 2,
        "ORDER_FILLING_BOC": 3,
        "TIMEFRAME_H1": 0x4001,
        "TIMEFRAME_MN1": 0xC001,
        "RES_E_INTERNAL_FAIL_CONNECT": -10004,
        "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0,
        "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING": 2,
    }
    for name, value in expected.items():
        assert getattr(C, name) == value, name
    retcodes = {v for k, v in C.all_constants().items() if k.startswith("TRADE_RETCODE_")}
    assert retcodes <= set(RETCODE_COMMENTS)


def test_function_names_match_recorded_core() -> None:
    """MetaTrader5 Python reference, function list (initialize ... market_book_get): every
    function of the wheel's _core exists on the emulator, and nothing else is claimed."""
    recorded = _recorded_functions()
    assert set(recorded) == set(API_FUNCTIONS)
    for name in recorded:
        assert callable(getattr(MT5Terminal, name)), name


def test_parameter_names_match_recorded_core() -> None:
    """MetaTrader5 Python reference, each function's "Parameters" section: the parameter
    names of the wheel's signature lines are accepted by the emulator (positional ones in the
    same order)."""
    for name, params in _recorded_functions().items():
        sig = inspect.signature(getattr(MT5Terminal, name))
        accepted = [p for p in sig.parameters if p != "self"]
        for param in params:
            assert param in accepted, f"{name}: {param} not in {accepted}"
        line = next(x for x in _section("functions") if x.startswith(name + "("))
        if "[" not in line.split("\t")[0]:  # all-positional signatures: same order
            assert accepted[: len(params)] == params, name


def test_structures_names_fields_and_order() -> None:
    """MetaTrader5 Python reference examples (terminal_info, account_info, symbol_info,
    symbol_info_tick, order_check, order_send, positions_get, orders_get, history_deals_get):
    result types carry the real names, and field names *in order*.  The _core binary stores
    each field name once, at its first use; walking the structures in the binary's order must
    reproduce exactly the recorded sequence."""
    recorded_structs = [line.split("\t")[0] for line in _section("structures")]
    assert sorted(recorded_structs) == sorted(STRUCTURES)
    for name, cls in STRUCTURES.items():
        assert cls.__name__ == name
        assert hasattr(cls(), "_asdict")
    seen: list[str] = []
    for name in recorded_structs:
        for field in STRUCTURES[name]._fields:
            if field not in seen:
                seen.append(field)
    for field in RATES_DTYPE.names or ():
        if field not in seen:
            seen.append(field)
    assert seen == _section("fields")


def test_numpy_dtypes() -> None:
    """copy_rates_from / copy_ticks_from reference: numpy arrays with named columns
    time, open, high, low, close, tick_volume, spread, real_volume (rates) and time, bid,
    ask, last, volume, time_msc, flags, volume_real (ticks)."""
    assert RATES_DTYPE.names == (
        "time",
        "open",
        "high",
        "low",
        "close",
        "tick_volume",
        "spread",
        "real_volume",
    )
    assert TICKS_DTYPE.names == (
        "time",
        "bid",
        "ask",
        "last",
        "volume",
        "time_msc",
        "flags",
        "volume_real",
    )


def test_error_messages_come_from_core() -> None:
    """last_error reference: (code, description) pairs; the descriptions are the strings of
    the wheel's _core (e.g. 'No IPC connection', 'Terminal: Authorization failed')."""
    messages = set(_section("messages"))
    for code, message in ERROR_MESSAGES.items():
        if code == C.RES_S_OK:
            continue
        assert message.replace("%s", "%S") in messages, (code, message)


# ----------------------------------------------------------------------------------------
# live wheel (only when .cache/mt5-wheel/ holds it)
# ----------------------------------------------------------------------------------------
WHEEL = extract.find_wheel(extract.DEFAULT_WHEEL_DIR)
needs_wheel = pytest.mark.skipif(
    WHEEL is None,
    reason=f"real MetaTrader5 wheel not in {extract.DEFAULT_WHEEL_DIR} "
    "(run tests/venues/mt5/tools/fetch_wheel.sh)",
)


@needs_wheel
def test_live_wheel_constants() -> None:
    """The committed constants module is exactly what the live wheel generates, and every
    constant of its MetaTrader5/__init__.py has the same value on the emulator."""
    assert WHEEL is not None
    contents = extract.read_wheel(WHEEL)
    assert extract.render_constants_module(contents) == Path(extract.CONSTANTS_PATH).read_text(
        "utf-8"
    )
    mt5 = MT5Terminal()
    for name, value, _ in extract.parse_constants(contents.init_source):
        if name.startswith("__"):
            continue
        assert getattr(mt5, name) == value, name


@needs_wheel
def test_live_wheel_signatures() -> None:
    """The committed signatures.txt is exactly what the live wheel's _core yields."""
    assert WHEEL is not None
    contents = extract.read_wheel(WHEEL)
    assert extract.render_signatures(contents) == SIGNATURES
    api = extract.parse_core(contents.core_binary)
    assert {name for name, _, _ in api.functions} == set(API_FUNCTIONS)

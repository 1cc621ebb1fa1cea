# ruff: noqa
# fmt: off
# mypy: disable-error-code="type-arg"
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_STARTING: _ClassVar[Phase]
    PHASE_RUNNING: _ClassVar[Phase]
    PHASE_PAUSED: _ClassVar[Phase]
    PHASE_HALTED: _ClassVar[Phase]
    PHASE_STOPPING: _ClassVar[Phase]
    PHASE_STOPPED: _ClassVar[Phase]
    PHASE_FAILED: _ClassVar[Phase]
    PHASE_DEGRADED: _ClassVar[Phase]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_BUY: _ClassVar[Direction]
    DIRECTION_SELL: _ClassVar[Direction]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_ORDER: _ClassVar[EventKind]
    EVENT_KIND_FILL: _ClassVar[EventKind]
    EVENT_KIND_RISK: _ClassVar[EventKind]
    EVENT_KIND_STATE: _ClassVar[EventKind]
    EVENT_KIND_SIGNAL: _ClassVar[EventKind]
    EVENT_KIND_DROPPED: _ClassVar[EventKind]
PHASE_UNSPECIFIED: Phase
PHASE_STARTING: Phase
PHASE_RUNNING: Phase
PHASE_PAUSED: Phase
PHASE_HALTED: Phase
PHASE_STOPPING: Phase
PHASE_STOPPED: Phase
PHASE_FAILED: Phase
PHASE_DEGRADED: Phase
DIRECTION_UNSPECIFIED: Direction
DIRECTION_BUY: Direction
DIRECTION_SELL: Direction
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ORDER: EventKind
EVENT_KIND_FILL: EventKind
EVENT_KIND_RISK: EventKind
EVENT_KIND_STATE: EventKind
EVENT_KIND_SIGNAL: EventKind
EVENT_KIND_DROPPED: EventKind

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PluginInfo(_message.Message):
    __slots__ = ("kind", "name", "version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    version: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class RiskPluginState(_message.Message):
    __slots__ = ("name", "version", "locked", "reason", "tier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    locked: bool
    reason: str
    tier: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., locked: _Optional[bool] = ..., reason: _Optional[str] = ..., tier: _Optional[int] = ...) -> None: ...

class QualityFigure(_message.Message):
    __slots__ = ("name", "samples", "mean", "stddev", "cp", "cpk")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    CP_FIELD_NUMBER: _ClassVar[int]
    CPK_FIELD_NUMBER: _ClassVar[int]
    name: str
    samples: int
    mean: float
    stddev: float
    cp: float
    cpk: float
    def __init__(self, name: _Optional[str] = ..., samples: _Optional[int] = ..., mean: _Optional[float] = ..., stddev: _Optional[float] = ..., cp: _Optional[float] = ..., cpk: _Optional[float] = ...) -> None: ...

class StatusSnapshot(_message.Message):
    __slots__ = ("bot", "mode", "phase", "equity", "balance", "currency", "pnl_today", "pnl_total", "drawdown_pct", "open_positions", "open_orders", "halted", "halt_reason", "paused", "pause_reason", "last_bar_ts", "config_hash", "plugins", "risk", "quality", "broker_connected", "reconciled", "bars", "starting_reason", "last_known", "closes_stuck", "closes_retrying")
    BOT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PNL_TODAY_FIELD_NUMBER: _ClassVar[int]
    PNL_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DRAWDOWN_PCT_FIELD_NUMBER: _ClassVar[int]
    OPEN_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    HALT_REASON_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSE_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_BAR_TS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_HASH_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BROKER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    RECONCILED_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    STARTING_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CLOSES_STUCK_FIELD_NUMBER: _ClassVar[int]
    CLOSES_RETRYING_FIELD_NUMBER: _ClassVar[int]
    bot: str
    mode: str
    phase: Phase
    equity: float
    balance: float
    currency: str
    pnl_today: float
    pnl_total: float
    drawdown_pct: float
    open_positions: int
    open_orders: int
    halted: bool
    halt_reason: str
    paused: bool
    pause_reason: str
    last_bar_ts: int
    config_hash: str
    plugins: _containers.RepeatedCompositeFieldContainer[PluginInfo]
    risk: _containers.RepeatedCompositeFieldContainer[RiskPluginState]
    quality: _containers.RepeatedCompositeFieldContainer[QualityFigure]
    broker_connected: bool
    reconciled: bool
    bars: int
    starting_reason: str
    last_known: bool
    closes_stuck: _containers.RepeatedCompositeFieldContainer[CloseStuck]
    closes_retrying: _containers.RepeatedCompositeFieldContainer[CloseRetrying]
    def __init__(self, bot: _Optional[str] = ..., mode: _Optional[str] = ..., phase: _Optional[_Union[Phase, str]] = ..., equity: _Optional[float] = ..., balance: _Optional[float] = ..., currency: _Optional[str] = ..., pnl_today: _Optional[float] = ..., pnl_total: _Optional[float] = ..., drawdown_pct: _Optional[float] = ..., open_positions: _Optional[int] = ..., open_orders: _Optional[int] = ..., halted: _Optional[bool] = ..., halt_reason: _Optional[str] = ..., paused: _Optional[bool] = ..., pause_reason: _Optional[str] = ..., last_bar_ts: _Optional[int] = ..., config_hash: _Optional[str] = ..., plugins: _Optional[_Iterable[_Union[PluginInfo, _Mapping]]] = ..., risk: _Optional[_Iterable[_Union[RiskPluginState, _Mapping]]] = ..., quality: _Optional[_Iterable[_Union[QualityFigure, _Mapping]]] = ..., broker_connected: _Optional[bool] = ..., reconciled: _Optional[bool] = ..., bars: _Optional[int] = ..., starting_reason: _Optional[str] = ..., last_known: _Optional[bool] = ..., closes_stuck: _Optional[_Iterable[_Union[CloseStuck, _Mapping]]] = ..., closes_retrying: _Optional[_Iterable[_Union[CloseRetrying, _Mapping]]] = ...) -> None: ...

class CloseStuck(_message.Message):
    __slots__ = ("symbol", "code", "position")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    code: str
    position: float
    def __init__(self, symbol: _Optional[str] = ..., code: _Optional[str] = ..., position: _Optional[float] = ...) -> None: ...

class CloseRetrying(_message.Message):
    __slots__ = ("symbol", "code", "position", "refusals", "since_ts")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    SINCE_TS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    code: str
    position: float
    refusals: int
    since_ts: int
    def __init__(self, symbol: _Optional[str] = ..., code: _Optional[str] = ..., position: _Optional[float] = ..., refusals: _Optional[int] = ..., since_ts: _Optional[int] = ...) -> None: ...

class ListPositionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Position(_message.Message):
    __slots__ = ("symbol", "quantity", "average_price", "mark", "unrealized_pnl", "realized_pnl", "opened_ts")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    OPENED_TS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    quantity: float
    average_price: float
    mark: float
    unrealized_pnl: float
    realized_pnl: float
    opened_ts: int
    def __init__(self, symbol: _Optional[str] = ..., quantity: _Optional[float] = ..., average_price: _Optional[float] = ..., mark: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., realized_pnl: _Optional[float] = ..., opened_ts: _Optional[int] = ...) -> None: ...

class ListPositionsResponse(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[Position, _Mapping]]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("include_closed", "page_size", "page_token")
    INCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_closed: bool
    page_size: int
    page_token: str
    def __init__(self, include_closed: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "order_type", "quantity", "filled", "price", "status", "reduce_only", "parent_id", "created_ts", "tag", "stop_loss", "take_profit", "reference_price", "fees", "average_fill_price", "venue_order_id", "status_reason")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_TS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: float
    filled: float
    price: float
    status: str
    reduce_only: bool
    parent_id: str
    created_ts: int
    tag: str
    stop_loss: float
    take_profit: float
    reference_price: float
    fees: float
    average_fill_price: float
    venue_order_id: str
    status_reason: str
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., order_type: _Optional[str] = ..., quantity: _Optional[float] = ..., filled: _Optional[float] = ..., price: _Optional[float] = ..., status: _Optional[str] = ..., reduce_only: _Optional[bool] = ..., parent_id: _Optional[str] = ..., created_ts: _Optional[int] = ..., tag: _Optional[str] = ..., stop_loss: _Optional[float] = ..., take_profit: _Optional[float] = ..., reference_price: _Optional[float] = ..., fees: _Optional[float] = ..., average_fill_price: _Optional[float] = ..., venue_order_id: _Optional[str] = ..., status_reason: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListTradesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("seq", "symbol", "direction", "quantity", "entry_ts", "exit_ts", "entry_price", "exit_price", "net_pnl", "fees", "entry_reason", "exit_reason", "entry_order_id", "exit_order_id", "funding")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TS_FIELD_NUMBER: _ClassVar[int]
    EXIT_TS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    NET_PNL_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    ENTRY_REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNDING_FIELD_NUMBER: _ClassVar[int]
    seq: int
    symbol: str
    direction: int
    quantity: float
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    net_pnl: float
    fees: float
    entry_reason: str
    exit_reason: str
    entry_order_id: str
    exit_order_id: str
    funding: float
    def __init__(self, seq: _Optional[int] = ..., symbol: _Optional[str] = ..., direction: _Optional[int] = ..., quantity: _Optional[float] = ..., entry_ts: _Optional[int] = ..., exit_ts: _Optional[int] = ..., entry_price: _Optional[float] = ..., exit_price: _Optional[float] = ..., net_pnl: _Optional[float] = ..., fees: _Optional[float] = ..., entry_reason: _Optional[str] = ..., exit_reason: _Optional[str] = ..., entry_order_id: _Optional[str] = ..., exit_order_id: _Optional[str] = ..., funding: _Optional[float] = ...) -> None: ...

class ListTradesResponse(_message.Message):
    __slots__ = ("trades", "next_page_token")
    TRADES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[Trade]
    next_page_token: str
    def __init__(self, trades: _Optional[_Iterable[_Union[Trade, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ("reason", "actor")
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    reason: str
    actor: str
    def __init__(self, reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("reason", "actor", "pause_only", "halt_only")
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    PAUSE_ONLY_FIELD_NUMBER: _ClassVar[int]
    HALT_ONLY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    actor: str
    pause_only: bool
    halt_only: bool
    def __init__(self, reason: _Optional[str] = ..., actor: _Optional[str] = ..., pause_only: _Optional[bool] = ..., halt_only: _Optional[bool] = ...) -> None: ...

class EmergencyStopRequest(_message.Message):
    __slots__ = ("reason", "flatten", "actor")
    REASON_FIELD_NUMBER: _ClassVar[int]
    FLATTEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    reason: str
    flatten: bool
    actor: str
    def __init__(self, reason: _Optional[str] = ..., flatten: _Optional[bool] = ..., actor: _Optional[str] = ...) -> None: ...

class ResetRiskLockRequest(_message.Message):
    __slots__ = ("plugin", "reason", "actor")
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    plugin: str
    reason: str
    actor: str
    def __init__(self, plugin: _Optional[str] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class SubmitSignalRequest(_message.Message):
    __slots__ = ("symbol", "direction", "entry", "stop_loss", "take_profit", "volume", "current_price", "timeframe", "pattern_type", "source", "confidence", "signal_id", "actor")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    direction: Direction
    entry: float
    stop_loss: float
    take_profit: float
    volume: float
    current_price: float
    timeframe: str
    pattern_type: str
    source: str
    confidence: float
    signal_id: str
    actor: str
    def __init__(self, symbol: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., entry: _Optional[float] = ..., stop_loss: _Optional[float] = ..., take_profit: _Optional[float] = ..., volume: _Optional[float] = ..., current_price: _Optional[float] = ..., timeframe: _Optional[str] = ..., pattern_type: _Optional[str] = ..., source: _Optional[str] = ..., confidence: _Optional[float] = ..., signal_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class SignalResult(_message.Message):
    __slots__ = ("accepted", "reason", "client_order_id")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    client_order_id: str
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., client_order_id: _Optional[str] = ...) -> None: ...

class UpdateParamsRequest(_message.Message):
    __slots__ = ("params_json", "params_struct", "actor")
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_STRUCT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    params_json: str
    params_struct: _struct_pb2.Struct
    actor: str
    def __init__(self, params_json: _Optional[str] = ..., params_struct: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("kinds", "max_queue", "recent")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    max_queue: int
    recent: int
    def __init__(self, kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ..., max_queue: _Optional[int] = ..., recent: _Optional[int] = ...) -> None: ...

class EventValue(_message.Message):
    __slots__ = ("string_value", "double_value", "int_value", "bool_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    double_value: float
    int_value: int
    bool_value: bool
    def __init__(self, string_value: _Optional[str] = ..., double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class RuntimeEvent(_message.Message):
    __slots__ = ("seq", "ts", "kind", "message", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: EventValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[EventValue, _Mapping]] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    seq: int
    ts: int
    kind: EventKind
    message: str
    data: _containers.MessageMap[str, EventValue]
    def __init__(self, seq: _Optional[int] = ..., ts: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., message: _Optional[str] = ..., data: _Optional[_Mapping[str, EventValue]] = ...) -> None: ...

"""Binance error codes and messages used by the fake.

Codes and messages follow Binance's public error-code pages:

* Spot: https://developers.binance.com/docs/binance-spot-api-docs/errors
* USDⓈ-M futures:
  https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code

Where the fake had to guess (a message Binance does not document word for word),
the constant carries a ``# guessed`` comment.
"""

from __future__ import annotations


class BinanceError(Exception):
    """An API error, rendered as ``{"code": code, "msg": msg}`` with ``http_status``."""

    def __init__(
        self, code: int, msg: str, http_status: int = 400, data: object | None = None
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.data = data

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


# --- generic (both APIs) ----------------------------------------------------
UNKNOWN = -1000
DISCONNECTED = -1001
TOO_MANY_REQUESTS = -1003
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
BAD_PRECISION = -1111
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
INVALID_RECV_WINDOW = -1131
INVALID_MESSAGE = -1013  # filter failures (spot)
START_AFTER_END = -1023  # USDⓈ-M "Start time is greater than end time."
INVALID_PARAMETER = -1130  # "Data sent for parameter '%s' is not valid."
# --- spot order lists (errors.md, "11xx - Request issues") -----------------------
OCO_ORDER_TYPE_REJECTED = -1158
BUY_OCO_LIMIT_MUST_BE_BELOW = -1165
SELL_OCO_LIMIT_MUST_BE_ABOVE = -1166
BOTH_OCO_ORDERS_CANNOT_BE_LIMIT = -1168
BUY_OCO_STOP_LOSS_MUST_BE_ABOVE = -1196
SELL_OCO_STOP_LOSS_MUST_BE_BELOW = -1197
BUY_OCO_TAKE_PROFIT_MUST_BE_BELOW = -1198
SELL_OCO_TAKE_PROFIT_MUST_BE_ABOVE = -1199
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
# --- futures only -------------------------------------------------------------
MARGIN_NOT_SUFFICIENT = -2019
REDUCE_ONLY_REJECT = -2022
QTY_LESS_THAN_ZERO = -4003
QTY_LESS_THAN_MIN_QTY = -4004
QTY_GREATER_THAN_MAX_QTY = -4005
PRICE_LESS_THAN_MIN_PRICE = -4013
PRICE_NOT_INCREASED_BY_TICK_SIZE = -4014
PRICE_GREATER_THAN_MAX_PRICE = -4016
QTY_NOT_INCREASED_BY_STEP_SIZE = -4023
INVALID_LEVERAGE = -4028
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
THERE_EXISTS_OPEN_ORDERS = -4047
THERE_EXISTS_QUANTITY = -4048
DUPLICATED_CLIENT_ORDER_ID = -4116
POSITION_SIDE_NOT_MATCH = -4061
FOK_REJECT = -5021
POST_ONLY_REJECT = -5022
MIN_NOTIONAL = -4164

MSG_INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
MSG_DUPLICATE_ORDER = "Duplicate order sent."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_ORDER_NOT_EXIST = "Order does not exist."
MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."
MSG_BAD_KEY_FMT = "API-key format invalid."
MSG_TS_OUTSIDE = "Timestamp for this request is outside of the recvWindow."
MSG_TS_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_INVALID_SYMBOL = "Invalid symbol."
MSG_MARGIN_INSUFFICIENT = "Margin is insufficient."
MSG_FUTURES_DUPLICATE = "ClientOrderId is duplicated."
MSG_PRECISION = "Precision is over the maximum defined for this asset."
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_REDUCE_ONLY = "ReduceOnly Order is rejected."
MSG_OCO_TYPE = "Order type not supported in OCO."
MSG_OCO_PRICES = "The relationship of the prices for the orders is not correct."
# guessed: the margin API answers this for an unknown list (seen in client bug reports); the
# spot docs give no message for DELETE /api/v3/orderList on an unknown list
MSG_UNKNOWN_ORDER_LIST = "Unknown order list sent."
MSG_ORDER_LIST_NOT_EXIST = "Order list does not exist."  # guessed (-2013's list wording)


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def illegal(name: str) -> BinanceError:
    return BinanceError(
        ILLEGAL_CHARS,
        f"Illegal characters found in parameter '{name}'; "
        "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    )


def invalid(name: str) -> BinanceError:
    """-1130, the futures error-code page's "Data sent for parameter '%s' is not valid."
    (guessed: which parameters Binance answers it for)."""
    return BinanceError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(INVALID_MESSAGE, f"Filter failure: {name}")

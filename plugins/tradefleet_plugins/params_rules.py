"""Checks a plugin's params model makes between two of its fields, or against the bot it is
validated for (pure)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

Number = TypeVar("Number", int, float)
Value = TypeVar("Value")


def above_field(value: Number, info: ValidationInfo, other: str) -> Number:
    """``value``, which must be greater than the field ``other`` validated before it (a
    refused ``other`` is not there: its own error says why)."""
    bound = info.data.get(other)
    if bound is not None and value <= bound:
        raise ValueError(f"must be greater than {other} ({bound:.10g})")
    return value


def bot_symbol_keys(value: dict[str, Value], info: ValidationInfo) -> dict[str, Value]:
    """``value``, a map keyed by symbol, every key of which must be one of the bot's symbols
    (``symbols`` in the validation context: ``spec.market.symbols``, in the bot's naming even
    where a broker maps them to the venue's). A key the bot does not trade — a typo most often —
    would set a cap, a size or a file for nothing, silently: refused, each such key named as
    the field (``max_leverage_per_symbol.BTCUSTD``). Params validated without a bot (a plugin's
    own test, ``tradefleet plugins``) have no symbols to check against: the check is skipped."""
    context = info.context if isinstance(info.context, dict) else {}
    symbols = context.get("symbols")
    if not symbols:
        return value
    unknown = [key for key in value if key not in symbols]
    if unknown:
        # A ValidationError raised here is merged into the model's with its own locations
        # under the field's: the error names the key, as a refused value in the map would.
        listed = ", ".join(symbols)
        raise ValidationError.from_exception_data(
            "symbol keys",
            [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "bot_symbol",
                        "not one of the bot's symbols (spec.market.symbols: {symbols})",
                        {"symbols": listed},
                    ),
                    loc=(key,),
                    input=key,
                )
                for key in unknown
            ],
        )
    return value

"""Params of ``ensemble``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from tradefleet_runtime.sdk import PluginParams


class ChildParams(PluginParams):
    name: str = Field(description="A strategy plugin's name (as `tradefleet plugins list` says).")
    params: dict[str, Any] = Field(default_factory=dict, description="Its params.")
    confidence: float = Field(
        default=0.8, ge=0, le=1, description="How much this child's vote is trusted (0–1)."
    )


def _default_children() -> list[ChildParams]:
    return [
        ChildParams(name="ema-cross", params={"fast": 12, "slow": 48}),
        ChildParams(name="indicator-confluence"),
        ChildParams(name="fib-atr"),
    ]


class EnsembleParams(PluginParams):
    children: list[ChildParams] = Field(
        default_factory=_default_children,
        min_length=1,
        description="The voting strategies, each by name and params.",
    )
    quorum: int = Field(
        default=2, ge=1, le=100, description="Children that must agree on a direction."
    )
    min_confidence: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description=(
            "Least mean confidence of the agreeing children that count "
            "(`min_voter_confidence`): the ensemble acts when their mean is >= this (at 0.7, "
            "a mean of 0.7 acts)."
        ),
    )
    min_voter_confidence: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description=(
            "A child's vote counts toward the quorum only if its confidence is > this, "
            "strictly (at 0.7 a child of confidence 0.7 does not count); 0, the default: "
            'every child counts. "2 of 3 agree, each above 70%": `quorum: 2, '
            "min_voter_confidence: 0.7`."
        ),
    )
    stop_loss_pct: float | None = Field(
        default=None, gt=0, lt=1, description="Stop-loss distance from the entry bar's close."
    )
    take_profit_pct: float | None = Field(
        default=None, gt=0, description="Take-profit distance from the entry bar's close."
    )
    exit_without_quorum: bool = Field(
        default=False, description="Close the position when its direction loses the quorum."
    )

    # More votes than voters can never agree: the ensemble would run and never trade.
    @field_validator("quorum")
    @classmethod
    def _reachable(cls, quorum: int, info: ValidationInfo) -> int:
        children = info.data.get("children")
        if children is not None and quorum > len(children):
            raise ValueError(
                f"must be at most the number of children ({len(children)}), not {quorum}"
            )
        return quorum

    # Children's confidences are params: with fewer than a quorum above the floor the ensemble
    # would run and never trade.
    @field_validator("min_voter_confidence")
    @classmethod
    def _voters_left(cls, floor: float, info: ValidationInfo) -> float:
        children, quorum = info.data.get("children"), info.data.get("quorum")
        if not floor or children is None or quorum is None:
            return floor
        counted = sum(child.confidence > floor for child in children)
        if counted < quorum:
            raise ValueError(
                f"leaves {counted} of the children (confidence above {floor:.10g}) to vote, fewer "
                f"than the quorum of {quorum}: the ensemble would never trade"
            )
        return floor

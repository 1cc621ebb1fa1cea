"""The bounded label values a bot's metrics carry, checked once at start (pure).

Every value comes from the bot's own manifest or from the operator's ``--team`` value, one per
bot, so each label adds no series as the bot runs: ``currency`` is the spec's account currency,
``strategy``/``broker`` are plugin names, ``mode`` one of three words, ``symbol`` one of the
spec's symbols. Values that could reach a label from elsewhere are refused here, naming the
field, instead of being exported as free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tradefleet_runtime.spec.model import CURRENCY_CODE, BotManifest

#: An account currency as a short upper-case code (USD, EUR, USDT, BTC); lower case is folded.
CURRENCY = CURRENCY_CODE  # the spec's own rule: a manifest the model took is labelled
#: A team as a Kubernetes label value allows (≤ 63 characters), so the operator can pass the value
#: of a bot's team label through unchanged; never empty (see ``NO_TEAM``).
TEAM = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
MAX_TEAM_LENGTH = 63
#: The team of a bot started without one: a real value, so ``team=~".*"`` filters keep it.
NO_TEAM = "unassigned"
#: Positions in a symbol outside the spec's list (none are expected) are summed under this one.
OTHER_SYMBOL = "other"


class MetricLabelError(ValueError):
    """A value refused as a metric label; ``field`` names where it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def currency_label(value: str, field: str = "spec.capital.currency") -> str:
    """The account currency as a label value: trimmed, upper-cased, a short code."""
    code = value.strip().upper()
    if not CURRENCY.match(code):
        raise MetricLabelError(
            field,
            f"{value[:24]!r} is not a currency code (2-12 letters or digits, starting with a "
            "letter, such as USD, EUR, USDT or BTC)",
        )
    return code


def team_label(value: str | None, field: str = "--team") -> str:
    """The team as a label value; ``NO_TEAM`` when none is given."""
    team = (value or "").strip()
    if not team:
        return NO_TEAM
    if len(team) > MAX_TEAM_LENGTH or not TEAM.match(team):
        raise MetricLabelError(
            field,
            f"not a valid team name ({len(team)} characters): at most {MAX_TEAM_LENGTH} letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit",
        )
    return team


@dataclass(frozen=True, slots=True)
class BotLabels:
    """The label values of one bot's series; ``symbols`` bounds the per-symbol ones."""

    bot: str
    strategy: str = ""
    team: str = NO_TEAM
    mode: str = ""
    broker: str = ""
    currency: str = "USD"
    symbols: tuple[str, ...] = ()

    def info(self) -> dict[str, str]:
        """The ``tradefleet_bot_info`` labels."""
        return {
            "bot": self.bot,
            "strategy": self.strategy,
            "team": self.team,
            "mode": self.mode,
            "broker": self.broker,
            "currency": self.currency,
        }

    def symbol(self, symbol: str) -> str:
        """``symbol`` when the spec lists it, else ``OTHER_SYMBOL``."""
        return symbol if symbol in self.symbols else OTHER_SYMBOL


def bot_labels(manifest: BotManifest, team: str | None = None) -> BotLabels:
    """The label values of the bot ``manifest`` describes; raises :class:`MetricLabelError`."""
    spec = manifest.spec
    return BotLabels(
        bot=manifest.metadata.name,
        strategy=spec.strategy.name,
        team=team_label(team),
        mode=spec.mode.value,
        broker=spec.broker.name,
        currency=currency_label(spec.capital.currency),
        symbols=tuple(spec.market.symbols),
    )

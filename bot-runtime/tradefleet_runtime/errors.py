"""Errors the runtime raises on bad input: each names the field (or file and row) at fault."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field: a dotted path (``spec.market.timeframe``) and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


#: What a ``SpecError`` can be about: its heading names it ("2 errors in the --space file").
MANIFEST = "the bot manifest"
SPACE_FILE = "the --space file"
OPTIONS = "the command-line options"
STUDY_FILE = "the study file"
# A search that ran and found nothing to rank: not a fault of a file (the study is sound and
# resumes), of its space or of the strategy on these bars.
SEARCH = "the search"


class SpecError(ValueError):
    """A manifest (or plugin params, a search space, an option) was refused. ``errors`` lists
    every wrong field, one each; ``subject`` is what held them (default: the manifest, or the
    options when every field is one, ``--jobs``)."""

    def __init__(
        self, errors: Sequence[FieldError], source: str = "", subject: str | None = None
    ) -> None:
        self.errors = tuple(errors)
        self.source = source
        self.subject = subject or _subject_of(self.errors)
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {error}" for error in self.errors)
        noun = "error" if len(self.errors) == 1 else "errors"
        super().__init__(f"{head}{len(self.errors)} {noun} in {self.subject}\n{lines}")

    def about(self, subject: str, source: str | None = None) -> SpecError:
        """The same errors headed as ``subject`` (and ``source``): for a caller that knows what
        the refused input was where the code that refused it does not."""
        return SpecError(self.errors, self.source if source is None else source, subject)


def _subject_of(errors: Sequence[FieldError]) -> str:
    # Options are named as typed (``--train``); no manifest field starts with dashes.
    if errors and all(error.field.startswith("--") for error in errors):
        return OPTIONS
    return MANIFEST


class DataError(ValueError):
    """A data file was refused: the message names the file and the row (1-based, header = 1)."""


class StrategyRefused(ValueError):
    """The bot's strategy refused to start: a ``ValueError`` out of its ``on_start`` or the
    series it asks for (what its params model cannot see: MACD's ``slow > fast`` checked by
    the indicator, a higher timeframe off the bot's). Raised by ``BotSession.open`` after the
    run is journaled as failed; the CLI says it in one line, a search records the trial as
    refused by the strategy and goes on."""


class StrategyError(RuntimeError):
    """The bot's strategy raised: a bug in the plugin, not a refused input. The message is one
    line naming the strategy plugin, the hook (``__init__``, ``on_start``, ``on_bar``,
    ``on_fill``, ...), where (the bar's symbol, timeframe and open time, or the fill or
    order), and the exception's type and message; the original exception is ``__cause__``
    (its traceback is logged at debug level). ``context`` says what ran the strategy when
    that is not the bot itself (an optimiser's trial and its params).

    Only strings are kept, so the error pickles whole out of an optimiser's worker process
    whatever the strategy raised."""

    def __init__(
        self,
        plugin: str,
        hook: str,
        kind: str,
        detail: str,
        where: str = "",
        context: str = "",
    ) -> None:
        self.plugin = plugin
        self.hook = hook
        self.kind = kind  # the exception's type name
        self.detail = detail  # its message
        self.where = where
        self.context = context
        at = f" at {where}" if where else ""
        said = f": {detail}" if detail else ""
        head = f"{context}: " if context else ""
        super().__init__(f"{head}strategy {plugin!r} raised {kind} in {hook}{at}{said}")

    @classmethod
    def of(cls, plugin: str, hook: str, error: BaseException, where: str = "") -> StrategyError:
        # A KeyError's str() is its repr ('fast'): kept, it says which key was missing.
        return cls(plugin, hook, type(error).__name__, " ".join(str(error).split()), where)

    def in_context(self, context: str) -> StrategyError:
        """The same error said as happening in ``context`` (``trial 3 (fast=10, slow=30)``)."""
        return StrategyError(self.plugin, self.hook, self.kind, self.detail, self.where, context)

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickles ``args`` (the message) and calls __init__ with it alone.
        return (
            type(self),
            (self.plugin, self.hook, self.kind, self.detail, self.where, self.context),
        )


class PluginError(LookupError):
    """A plugin could not be found or loaded."""


class RiskPluginError(RuntimeError):
    """A risk plugin raised where the bot cannot go on without it (its ``on_bar``, its
    ``lock_reason``): one line naming the plugin, the hook, where, and the exception; the
    original is ``__cause__``. An error in ``check`` or ``account_actions`` is a veto or an
    action not taken instead, journaled in the plugin's name."""

    def __init__(self, plugin: str, hook: str, error: BaseException, where: str = "") -> None:
        self.plugin, self.hook = plugin, hook
        at = f" at {where}" if where else ""
        super().__init__(
            f"risk plugin {plugin} failed in {hook}{at}: {type(error).__name__}: {error}"
        )


def join_path(parts: Iterable[str | int]) -> str:
    """Join a location into a dotted path: ``("spec", "risk", 0)`` → ``spec.risk[0]``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class JournalError(RuntimeError):
    """A journal file cannot be opened or written; the message names the file and the cause."""

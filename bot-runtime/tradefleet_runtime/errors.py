"""Errors the runtime raises on bad input: each names the field (or file and row) at fault."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field: a dotted path (``spec.market.timeframe``) and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SpecError(ValueError):
    """A manifest (or plugin params) was refused. ``errors`` lists every wrong field, one each."""

    def __init__(self, errors: Sequence[FieldError], source: str = "") -> None:
        self.errors = tuple(errors)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {error}" for error in self.errors)
        noun = "error" if len(self.errors) == 1 else "errors"
        super().__init__(f"{head}{len(self.errors)} {noun} in the bot manifest\n{lines}")


class DataError(ValueError):
    """A data file was refused: the message names the file and the row (1-based, header = 1)."""


class PluginError(LookupError):
    """A plugin could not be found or loaded."""


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

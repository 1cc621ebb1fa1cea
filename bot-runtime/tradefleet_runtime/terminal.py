"""The consoles the CLI prints on: text as given, styled only where the code says so."""

from __future__ import annotations

import os

from rich.console import Console
from rich.text import Text

#: The width off a terminal (a file, a pipe): more than any row of a report table, so no cell
#: is cut to fit (at rich's default of 80 columns a trade list reads ``│ 1… │ 2017-06-1… │``).
PIPE_WIDTH = 10_000


def console(*, stderr: bool = False) -> Console:
    """A console whose strings print literally: rich markup is off, so a path, a param or an
    error holding ``[...]`` prints whole (markup would hide ``[low, high, step]`` and raise on
    ``[/x]``). Off a terminal it is wide unless ``COLUMNS`` says how wide."""
    out = Console(stderr=stderr, markup=False)
    if out.is_terminal or "COLUMNS" in os.environ:
        return out
    return Console(stderr=stderr, markup=False, width=PIPE_WIDTH)


def labelled(label: str, style: str, message: object) -> Text:
    """``label: message`` with the label styled and the message literal (never markup)."""
    return Text.assemble((label, style), f": {message}")

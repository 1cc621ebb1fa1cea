"""The operations docs say that editing a running bot's TradingBot restarts it and applies its
stop policy.

Every spec field except ``paused`` and ``emergencyStop`` is in the config hash
(``objects.config_hash``), so an edit of a strategy param, a risk plugin, a symbol or the
resources rolls the bot's pod (``Recreate``): the runtime gets SIGTERM and applies
``spec.onStop`` (resting entry orders cancelled by default; with ``flattenPositions: true``
every position closed at market) before the new pod starts. The docs said so only of drains
and operator upgrades, and a user could expect a param edit to be taken live.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/install.md", "docs/operations.md", "README.md")


def _paragraphs() -> list[str]:
    text = "\n\n".join((ROOT / doc).read_text() for doc in DOCS)
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]


def test_the_docs_say_a_spec_edit_restarts_the_bot_and_applies_its_stop_policy() -> None:
    edit = re.compile(r"\b(edit|change|apply)\w*\b[^.]{0,200}\b(spec|param|TradingBot)", re.I)
    restart = re.compile(r"\b(restart|roll|replace)\w*\b[^.]{0,200}\bpod", re.I)
    policy = re.compile(r"onStop|stop policy|flattenPositions", re.I)
    found = [
        p
        for p in _paragraphs()
        if edit.search(p)
        and restart.search(p)
        and policy.search(p)
        # The upgrade paragraph: an operator release rolling pods, not an edit of a bot.
        and not p.startswith("The operator reconciles every bot again when it starts")
    ]
    assert found, (
        "no paragraph of install.md/operations.md/README.md says that editing a running bot's "
        "spec (params, risk, symbols...) restarts its pod and applies spec.onStop"
    )

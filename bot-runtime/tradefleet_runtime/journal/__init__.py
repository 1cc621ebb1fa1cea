"""The bot's journal: every order, fill, risk decision and event, in SQLite (WAL)."""

from tradefleet_runtime.journal.sqlite import REFUSED_MOVE, Journal, RunRecord

__all__ = ["REFUSED_MOVE", "Journal", "RunRecord"]

"""Backtest and journal reports: figures (pure functions), a table, and a plot."""

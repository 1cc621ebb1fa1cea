"""Tests of the MetaTrader 5 terminal emulator (tests/venues/mt5)."""

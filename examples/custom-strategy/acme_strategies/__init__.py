"""ACME's private strategies for tradefleet."""

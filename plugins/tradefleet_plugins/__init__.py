"""tradefleet's built-in plugins: registered through the ``tradefleet`` entry-point group."""

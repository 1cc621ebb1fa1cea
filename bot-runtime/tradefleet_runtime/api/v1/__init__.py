"""Generated code for ``tradefleet.v1``; do not edit (see ``tradefleet_runtime.api.generate``)."""

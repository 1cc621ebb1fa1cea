"""The MetaTrader 5 bridge: ``tradefleet mt5-bridge`` serves one terminal's ``MetaTrader5``
functions over gRPC (``server``), and the client (``client``) offers them to the mt5 plugins as
the package would. ``codec`` carries the package's values; ``command`` is the CLI.

It lives in the runtime, not in the plugins, because both halves are runtime tooling over the
generated gRPC stubs (``tradefleet_runtime.api.v1``) and the server reuses the API's token and
TLS helpers (``service.auth``), which plugins may not import. The mt5 plugins never import it:
they load the client by name, as they load the ``MetaTrader5`` package (``params.terminal``).
"""

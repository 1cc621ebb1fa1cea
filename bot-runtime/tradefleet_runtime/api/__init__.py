"""The bot runtime's gRPC API: generated protobuf and gRPC code, one subpackage per version.

``proto/tradefleet/v1/runtime.proto`` is the source; ``generate.py`` writes ``v1/`` from it
(``python bot-runtime/tradefleet_runtime/api/generate.py``; ``--check`` fails when the committed
code is stale). The servicer is :mod:`tradefleet_runtime.service.grpc_server`, the client
:mod:`tradefleet_runtime.service.client`.
"""

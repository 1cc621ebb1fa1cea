# ruff: noqa
# fmt: off
"""Typed stubs for the gRPC code of tradefleet/v1/mt5_bridge.proto (written by generate.py)."""

import collections.abc

import grpc

from tradefleet_runtime.api.v1 import mt5_bridge_pb2

GRPC_GENERATED_VERSION: str
GRPC_VERSION: str


class Mt5BridgeServiceStub:
    def __init__(self, channel: grpc.Channel) -> None: ...
    Call: grpc.UnaryUnaryMultiCallable[mt5_bridge_pb2.Mt5CallRequest, mt5_bridge_pb2.Mt5CallResponse]
    Constants: grpc.UnaryUnaryMultiCallable[mt5_bridge_pb2.Mt5ConstantsRequest, mt5_bridge_pb2.Mt5ConstantsResponse]


class Mt5BridgeServiceServicer:
    def Call(self, request: mt5_bridge_pb2.Mt5CallRequest, context: grpc.ServicerContext) -> mt5_bridge_pb2.Mt5CallResponse: ...
    def Constants(self, request: mt5_bridge_pb2.Mt5ConstantsRequest, context: grpc.ServicerContext) -> mt5_bridge_pb2.Mt5ConstantsResponse: ...


def add_Mt5BridgeServiceServicer_to_server(
    servicer: Mt5BridgeServiceServicer, server: grpc.Server
) -> None: ...

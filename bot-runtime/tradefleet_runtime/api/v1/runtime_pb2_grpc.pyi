# ruff: noqa
# fmt: off
"""Typed stubs for the gRPC code of tradefleet/v1/runtime.proto (written by generate.py)."""

import collections.abc

import grpc

from tradefleet_runtime.api.v1 import runtime_pb2

GRPC_GENERATED_VERSION: str
GRPC_VERSION: str


class RuntimeServiceStub:
    def __init__(self, channel: grpc.Channel) -> None: ...
    GetStatus: grpc.UnaryUnaryMultiCallable[runtime_pb2.GetStatusRequest, runtime_pb2.StatusSnapshot]
    ListPositions: grpc.UnaryUnaryMultiCallable[runtime_pb2.ListPositionsRequest, runtime_pb2.ListPositionsResponse]
    ListOrders: grpc.UnaryUnaryMultiCallable[runtime_pb2.ListOrdersRequest, runtime_pb2.ListOrdersResponse]
    ListTrades: grpc.UnaryUnaryMultiCallable[runtime_pb2.ListTradesRequest, runtime_pb2.ListTradesResponse]
    Pause: grpc.UnaryUnaryMultiCallable[runtime_pb2.PauseRequest, runtime_pb2.StatusSnapshot]
    Resume: grpc.UnaryUnaryMultiCallable[runtime_pb2.ResumeRequest, runtime_pb2.StatusSnapshot]
    EmergencyStop: grpc.UnaryUnaryMultiCallable[runtime_pb2.EmergencyStopRequest, runtime_pb2.StatusSnapshot]
    ResetRiskLock: grpc.UnaryUnaryMultiCallable[runtime_pb2.ResetRiskLockRequest, runtime_pb2.StatusSnapshot]
    SubmitSignal: grpc.UnaryUnaryMultiCallable[runtime_pb2.SubmitSignalRequest, runtime_pb2.SignalResult]
    UpdateParams: grpc.UnaryUnaryMultiCallable[runtime_pb2.UpdateParamsRequest, runtime_pb2.StatusSnapshot]
    StreamEvents: grpc.UnaryStreamMultiCallable[runtime_pb2.StreamEventsRequest, runtime_pb2.RuntimeEvent]


class RuntimeServiceServicer:
    def GetStatus(self, request: runtime_pb2.GetStatusRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def ListPositions(self, request: runtime_pb2.ListPositionsRequest, context: grpc.ServicerContext) -> runtime_pb2.ListPositionsResponse: ...
    def ListOrders(self, request: runtime_pb2.ListOrdersRequest, context: grpc.ServicerContext) -> runtime_pb2.ListOrdersResponse: ...
    def ListTrades(self, request: runtime_pb2.ListTradesRequest, context: grpc.ServicerContext) -> runtime_pb2.ListTradesResponse: ...
    def Pause(self, request: runtime_pb2.PauseRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def Resume(self, request: runtime_pb2.ResumeRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def EmergencyStop(self, request: runtime_pb2.EmergencyStopRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def ResetRiskLock(self, request: runtime_pb2.ResetRiskLockRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def SubmitSignal(self, request: runtime_pb2.SubmitSignalRequest, context: grpc.ServicerContext) -> runtime_pb2.SignalResult: ...
    def UpdateParams(self, request: runtime_pb2.UpdateParamsRequest, context: grpc.ServicerContext) -> runtime_pb2.StatusSnapshot: ...
    def StreamEvents(self, request: runtime_pb2.StreamEventsRequest, context: grpc.ServicerContext) -> collections.abc.Iterator[runtime_pb2.RuntimeEvent]: ...


def add_RuntimeServiceServicer_to_server(
    servicer: RuntimeServiceServicer, server: grpc.Server
) -> None: ...

"""The real operator and a real runtime: quick ``spec.emergencyStop`` edits end as the newest
spec says, and deleting a bot that holds a position without flattening names what it leaves.
"""

from __future__ import annotations

import csv
import datetime
import time
from pathlib import Path

from tests.e2e.serve_process import (
    CONTROL_TOKEN,
    READ_TOKEN,
    ServeProcess,
    control,
    ema_bot_manifest,
    signal_bot_manifest,
)
from tests.operator.e2e.conftest import Cluster, Operator, bot_manifest
from tests.operator.e2e.test_runtime import token_secret
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

DATA = Path(__file__).resolve().parents[3] / "data" / "EURUSD_H1_2017.csv"


def _phase(cluster: Cluster, name: str) -> str | None:
    return ((cluster.bot(name) or {}).get("status") or {}).get("phase")


def test_quick_stop_edits_end_as_the_newest_spec_says(
    cluster: Cluster, operator: Operator, tmp_path: Path
) -> None:
    """7 quick edits setting and removing the stop, then one more: the newest decides.

    Before the fix the handler of a "stop removed" spec that was no longer the newest skipped
    its Resume and succeeded; kopf then saw the newest spec equal to the one it had handled
    and never called the handler again: halted for good (about 4 runs in 9 of one round).
    """
    serve = ServeProcess(tmp_path, ema_bot_manifest("tog-bot"), speed=36000).start()
    try:
        cluster.create(token_secret("tog-bot"))
        cluster.apply_bot(bot_manifest("tog-bot", address=f"127.0.0.1:{serve.grpc_port}"))
        cluster.wait(lambda: _phase(cluster, "tog-bot") == "Running", message="running")
        stub = serve.stub()
        for final in (True, False, True, False, False):
            for i in range(7):
                stop = {"reason": f"t{i}"} if i % 2 == 0 else None
                cluster.patch_bot("tog-bot", {"spec": {"emergencyStop": stop}})
            final_stop = {"reason": "final"} if final else None
            cluster.patch_bot("tog-bot", {"spec": {"emergencyStop": final_stop}})

            def settled(final: bool = final) -> bool:
                status = stub.GetStatus(pb.GetStatusRequest(), metadata=control())
                return bool(status.halted is final)

            cluster.wait(settled, timeout=20, message=f"runtime halted={final} as the spec says")
            time.sleep(1.5)  # and it stays so: nothing late undoes it
            assert settled(), f"runtime halted is not {final} any more"
            want = "Halted" if final else "Running"

            def recorded(want: str = want) -> bool:
                status = (cluster.bot("tog-bot") or {}).get("status") or {}
                return bool((status.get("control") or {}).get("applied") == want)

            cluster.wait(recorded, message=f"status.control.applied {want}")
    finally:
        serve.kill()


def _close_at(timestamp: int) -> float:
    with DATA.open() as file:
        for row in list(csv.reader(file))[1:]:
            when = datetime.datetime.strptime(row[0][:19], "%d.%m.%Y %H:%M:%S")
            if int(when.replace(tzinfo=datetime.UTC).timestamp()) == timestamp:
                return float(row[4])
    raise AssertionError(f"no bar at {timestamp}")


def test_deleting_a_bot_that_keeps_its_position_names_what_it_leaves(
    cluster: Cluster, operator: Operator, tmp_path: Path
) -> None:
    serve = ServeProcess(tmp_path, signal_bot_manifest("pos-bot", "market"), speed=3600).start()
    try:
        stub = serve.stub()
        serve.wait_for(lambda s: s.bars > 3)
        last = stub.GetStatus(pb.GetStatusRequest(), metadata=control()).last_bar_ts
        price = _close_at(last // 1000 if last > 10**11 else last)
        signal = pb.SubmitSignalRequest(
            symbol="EURUSD", direction=pb.DIRECTION_BUY, entry=price, stop_loss=price * 0.99,
            take_profit=price * 1.02, timeframe="1h",
        )  # fmt: skip
        assert stub.SubmitSignal(signal, metadata=control()).accepted
        serve.wait_for(lambda s: s.open_positions == 1, timeout=10)
        held = stub.ListPositions(pb.ListPositionsRequest(), metadata=control()).positions
        orders = stub.ListOrders(pb.ListOrdersRequest(), metadata=control()).orders
        assert len(held) == 1 and orders  # the position, and its stop-loss / take-profit

        cluster.create(token_secret("pos-bot"))
        bot = bot_manifest("pos-bot", address=f"127.0.0.1:{serve.grpc_port}")
        bot["spec"]["onStop"]["flattenPositions"] = False
        bot["spec"]["strategy"] = {
            "name": "external-signal",
            "params": {"entry_order": "market", "max_entry_deviation_pct": 3,
                       "max_signal_age_s": 30},
        }  # fmt: skip
        cluster.apply_bot(bot)
        cluster.wait(lambda: _phase(cluster, "pos-bot") == "Running", message="running")
        cluster.delete_bot("pos-bot")
        cluster.wait(lambda: cluster.bot("pos-bot") is None, timeout=30, message="bot deleted")

        def left_open() -> list[str]:
            return [
                str(e.get("message"))
                for e in cluster.events("pos-bot")
                if e.get("reason") == "PositionsLeftOpen" and e.get("type") == "Warning"
            ]

        message = cluster.wait(left_open, timeout=10, message="a PositionsLeftOpen Warning")[0]
        after = stub.GetStatus(pb.GetStatusRequest(), metadata=control())
        assert after.halted and after.open_positions == 1  # not flattened: still held
        assert f"position EURUSD long {abs(held[0].quantity):.10g}" in message
        assert "1 position and" in message and "flattenPositions is false" in message
        for order in orders:
            assert f"order EURUSD {order.side} {order.order_type} " in message
        assert "paper runtime (no venue holds them)" in message
        assert CONTROL_TOKEN not in message and READ_TOKEN not in message
    finally:
        serve.kill()

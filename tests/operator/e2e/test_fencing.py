"""Exactly one runtime per bot, fenced (issue 19, scope 6).

``replicas: 1`` and ``Recreate`` are not enough: a node that stops answering but still runs its
pod, or a manual copy, makes two runtimes of one bot. The runtime holds an exclusive lock on
its journal (``<journal>.lock``, ``flock``) for its whole life and refuses to start while
another holds it; the journal's claim is ``ReadWriteOncePod``, so a second pod cannot even
mount it. The runtime knows nothing of Kubernetes: the lock is the journal's own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.serve_process import TRADEFLEET, ServeProcess, ema_bot_manifest
from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import Journal


def test_two_runtimes_on_one_journal_never_both_trade(tmp_path: Path) -> None:
    journal = tmp_path / "shared" / "journal.sqlite"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = ServeProcess(first_dir, ema_bot_manifest("fenced"), speed=3600, journal=journal)
    first.start()
    try:
        before = first.wait_for(lambda s: s.bars > 0, timeout=20).bars
        second = ServeProcess(second_dir, ema_bot_manifest("fenced"), speed=3600, journal=journal)
        command = [
            TRADEFLEET, "serve", str(second.manifest), "--grpc", "127.0.0.1:0",
            "--http", "127.0.0.1:0", "--auth-dir", str(second.auth),
            "--webhook-keys", str(second.keys), "--journal", str(journal),
        ]  # fmt: skip
        refused = subprocess.run(
            command, cwd=second_dir, capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "400"},  # no line wrapping in the message
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        output = refused.stdout + refused.stderr
        assert "is in use by pid" in output and "journal.sqlite.lock" in output, output
        assert '"listening"' not in refused.stdout  # it never served, so never sent an order
        # The first runtime is untouched and keeps trading.
        first.wait_for(lambda s: s.bars > before and not s.halted, timeout=20)
    finally:
        first.kill()
    # The holder died (SIGKILL): the kernel released the lock, a new runtime may start.
    again = ServeProcess(second_dir, ema_bot_manifest("fenced"), speed=3600, journal=journal)
    again.start()
    again.kill()


def test_the_journal_lock_is_held_for_the_journals_life(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    held = Journal(path, durable=True)
    with pytest.raises(JournalError, match="in use by pid"):
        Journal(path, durable=True)
    reader = Journal(path)  # reading (reports) takes no lock
    reader.close()
    held.close()
    Journal(path, durable=True).close()  # released on close

"""A bot that fails makes `tradefleet serve` exit non-zero, with the reason where it shows."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.serve_process import TRADEFLEET, ServeProcess, ema_bot_manifest
from tradefleet_runtime.journal import Journal


def _mount_small_disk(folder: Path, size: str) -> bool:
    folder.mkdir()
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        timeout=10,
    )
    return done.returncode == 0


def test_serve_exits_non_zero_when_its_bot_fails(tmp_path: Path) -> None:
    """Regression: the journal's disk filled, the log said "bot failed", and the process
    printed `stopped` and exited 0, so Kubernetes believed the pod finished cleanly."""
    disk = tmp_path / "small-disk"
    if not _mount_small_disk(disk, "400k"):
        pytest.skip("needs to mount a small tmpfs (root with mount rights)")
    try:
        failure = tmp_path / "termination-log"
        serve = ServeProcess(
            tmp_path,
            ema_bot_manifest("full-disk-bot"),
            speed=3_600_000,
            journal=disk / "journal.sqlite",
            extra=["--failure-file", str(failure)],
        ).start()
        try:
            assert serve.process is not None
            code = serve.process.wait(120)
        finally:
            serve.kill()
        time.sleep(0.2)  # the reader threads drain the pipes
        output = serve.output()
        assert code == 1, output
        assert "full" in failure.read_text()  # "the disk failed or is full (...)"
        assert str(disk / "journal.sqlite") in failure.read_text()
        assert '"stopped"' in output  # it did shut down its servers
        assert "Traceback" not in "".join(serve.stdout)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=10)


def test_a_bot_failing_at_start_exits_non_zero_and_journals_why(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2017-01-02 00:00,1.05,1.06,1.04,1.05,10\n"
        "2017-01-02 01:00,1.05,nan,1.04,1.05,10\n"
    )
    manifest = ema_bot_manifest("bad-data-bot").replace(
        str(Path(__file__).resolve().parents[2] / "data" / "EURUSD_H1_2017.csv"), str(data)
    )
    assert str(data) in manifest
    serve = ServeProcess(tmp_path, manifest, speed=3600).start()
    try:
        assert serve.process is not None
        code = serve.process.wait(60)
    finally:
        serve.kill()
    assert code == 1, serve.output()
    db = sqlite3.connect(serve.journal or "")
    status = db.execute("SELECT status, summary FROM runs").fetchall()
    events = [r[0] for r in db.execute("SELECT message FROM events WHERE kind = 'run_failed'")]
    db.close()
    assert status[0][0] == "failed" and "bad.csv" in status[0][1]
    assert events and "bad.csv" in events[0]


def _serve_once(serve: ServeProcess, *listen: str) -> subprocess.CompletedProcess[str]:
    """``tradefleet serve`` that is expected to fail at start: run it to its end."""
    command = [
        TRADEFLEET, "serve", str(serve.manifest), *listen,
        "--auth-dir", str(serve.auth), "--speed", "3600", "--journal", str(serve.journal),
        "--failure-file", str(serve.folder / "termination-log"),
    ]  # fmt: skip
    return subprocess.run(command, cwd=serve.folder, capture_output=True, text=True, timeout=60)


def _nothing_journaled(journal: Path | None) -> None:
    """No run was started: none left 'running', no ``run_started``."""
    assert journal is not None
    if not journal.exists():
        return
    db = sqlite3.connect(journal)
    try:
        assert db.execute("SELECT status FROM runs").fetchall() == []
        assert db.execute("SELECT kind FROM events").fetchall() == []
    finally:
        db.close()


def test_a_port_in_use_fails_the_start_naming_it_before_the_run_starts(tmp_path: Path) -> None:
    """Regression: the engine started before the HTTP port was bound; a port in use gave an
    OSError traceback, a ``run_started`` event, a run left 'running' and no failure file."""
    serve = ServeProcess(tmp_path, ema_bot_manifest("busy-port-bot"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for listen, kind in (
            (["--grpc", "127.0.0.1:0", "--http", f"127.0.0.1:{port}"], "HTTP"),
            (["--grpc", f"127.0.0.1:{port}", "--http", "127.0.0.1:0"], "gRPC"),
        ):
            done = _serve_once(serve, *listen)
            said = f"cannot listen on 127.0.0.1:{port} ({kind}): address already in use"
            assert done.returncode == 1, done.stderr
            assert f"error: {said}" in done.stderr.splitlines()
            assert "Traceback" not in done.stderr + done.stdout
            assert '"listening"' not in done.stdout
            assert (tmp_path / "termination-log").read_text().strip() == said
            _nothing_journaled(serve.journal)


def test_unusable_tls_files_fail_the_start_naming_the_file(tmp_path: Path) -> None:
    """Regression: a file that is not a certificate gave a traceback saying "Failed to bind to
    address" though the port was free. The file is named; what it holds (a key) is not shown."""
    secret = "KEY-PLANTED-SECRET-51ab"
    serve = ServeProcess(tmp_path, ema_bot_manifest("bad-tls-bot"))
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "tls.crt").write_text(f"not a certificate {secret}\n")
    (tls / "tls.key").write_text(
        f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"
    )
    done = _serve_once(
        serve, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--tls-dir", str(tls)
    )
    output = done.stdout + done.stderr
    said = f"TLS certificate {tls / 'tls.crt'}: not a PEM certificate"
    assert done.returncode == 1, output
    assert f"error: {said}" in done.stderr.splitlines()
    assert "Traceback" not in output and "bind" not in output
    assert secret not in output
    assert (tmp_path / "termination-log").read_text().strip() == said
    _nothing_journaled(serve.journal)


def test_a_journal_another_runtime_holds_fails_the_start_naming_it(tmp_path: Path) -> None:
    """Two runtimes of one bot must never both trade: the second is refused at its journal's
    lock, in one line and the failure file (a pod's termination message), not a traceback."""
    serve = ServeProcess(tmp_path, ema_bot_manifest("held-journal-bot"))
    journal_path = serve.journal
    assert journal_path is not None
    held = Journal(journal_path, durable=True)  # this process holds the lock, as a runtime does
    try:
        done = _serve_once(serve, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0")
    finally:
        held.close()
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and '"listening"' not in done.stdout
    said = (tmp_path / "termination-log").read_text().strip()
    assert said.startswith(f"journal {journal_path}") and f"error: {said}" in done.stderr

"""`tradefleet fleet ...` reaches the extension before the CLI's heavy imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = (
    "numpy",
    "rich",
    "click",
    "pydantic",
    "tradefleet_runtime.cli",
    "tradefleet_runtime.session",
)


def test_an_extension_command_runs_before_the_cli_is_imported() -> None:
    probe = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from tradefleet_runtime.launcher import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["fleet", "stop", "--help"])
        assert code == 0, code
        assert "--selector" in out.getvalue(), out.getvalue()
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"loaded before the fleet command ran: {done.stdout}"


def test_other_commands_go_to_the_cli() -> None:
    probe = textwrap.dedent(
        """
        import contextlib, io
        from tradefleet_runtime.launcher import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["--help"])
        assert code == 0, code
        assert "backtest" in out.getvalue()
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

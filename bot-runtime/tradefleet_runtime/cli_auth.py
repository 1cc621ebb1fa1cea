"""``tradefleet auth init DIR``: fresh bearer tokens for ``tradefleet serve --auth-dir DIR``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

#: The token files ``serve --auth-dir`` reads, and what each may do.
TOKEN_FILES = {
    "control.token": "every call, including pause, stop and params",
    "read.token": "read-only calls: status, positions, orders, trades, events",
}


def write_tokens(directory: Path, force: bool = False) -> list[Path]:
    """Write a fresh random token to each of :data:`TOKEN_FILES` in ``directory`` (created
    0700), each file 0600. Refuses to replace existing tokens unless ``force``."""
    existing = [directory / name for name in TOKEN_FILES if (directory / name).exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise click.ClickException(f"{names} exist already; --force replaces them")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for name in TOKEN_FILES:
        path = directory / name
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        os.chmod(path, 0o600)  # whatever the umask
        written.append(path)
    return written


@click.group("auth", context_settings={"help_option_names": ["-h", "--help"]})
def auth_group() -> None:
    """Bearer tokens for a bot's gRPC API."""


@auth_group.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--force", is_flag=True, help="Replace tokens that exist already.")
def init(directory: Path, force: bool) -> int:
    """Write fresh control.token and read.token files (mode 0600) into DIRECTORY.

    Then: tradefleet serve BOT.yaml --auth-dir DIRECTORY, and control the bot with
    --token-file DIRECTORY/control.token (or read it with DIRECTORY/read.token).
    """
    try:
        written = write_tokens(directory, force)
    except OSError as error:
        raise click.ClickException(f"cannot write tokens to {directory}: {error}") from error
    for path in written:
        click.echo(f"wrote {path} ({TOKEN_FILES[path.name]})")
    return 0

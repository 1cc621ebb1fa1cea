"""API credentials from the mounted Secret directory, re-read when the files rotate.

The directory (``TRADEFLEET_CREDENTIALS_DIR``, a Kubernetes Secret volume) holds one file per
ccxt credential: ``apiKey``, ``secret`` and, for venues that need them, ``password`` (a
passphrase) and ``uid``. A Secret volume updates its files in place (through a symlinked
``..data`` folder), so the files are checked for a change — cheaply, by their modification
times — before each request and read again when one changed.

The values never leave this module except into the ccxt client's own fields: ``Credentials``
prints as its field names only, and ``redact`` removes them from any text (ccxt messages,
URLs) before it reaches a log, an error or an event.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

FIELDS: tuple[str, ...] = ("apiKey", "secret", "password", "uid")
REQUIRED: tuple[str, ...] = ("apiKey", "secret")


class CredentialsError(ValueError):
    """The credentials directory is missing something (names the file, never a value)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    values: dict[str, str] = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(sorted(self.values))})"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        """Every value worth hiding (long enough not to blank ordinary words)."""
        return tuple(v for v in self.values.values() if len(v) >= 6)


def _stamp(directory: Path) -> tuple[tuple[str, float, int], ...]:
    stamp = []
    for name in FIELDS:
        path = directory / name
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.append((name, info.st_mtime, info.st_size))
    return tuple(stamp)


def _value_of(path: Path) -> str | None:
    """The stripped value of one credential file (None: no such file). A file that cannot be a
    credential is refused here, naming it, before any request is signed with it: a newline
    inside a key would otherwise surface as the HTTP library's "forbidden control character"
    refusal, said as the venue's."""
    name = path.name
    try:
        if not path.is_file():
            return None
        raw = path.read_bytes()
    except FileNotFoundError:
        return None  # removed between the look and the read (a Secret update): missing
    except OSError as error:
        # The OS's words name the path and the problem, never the file's content.
        raise CredentialsError(
            f"credentials_dir: {path.parent}: {name}: cannot be read ({error.strerror or error})"
        ) from None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        # The decoder's message carries the offending bytes' position only; ``from None``
        # keeps the bytes themselves (a part of the secret) out of any traceback.
        raise CredentialsError(f"credentials_dir: {path.parent}: {name}: not UTF-8 text") from None
    for char in value:
        if unicodedata.category(char) == "Cc":
            hint = "a newline inside the key?" if char in "\r\n" else f"U+{ord(char):04X}"
            raise CredentialsError(
                f"credentials_dir: {path.parent}: {name}: holds a control character ({hint})"
            )
    return value


def read_credentials(directory: Path) -> Credentials:
    """Read the credential files of ``directory``; each value is stripped of whitespace.

    Raises ``CredentialsError`` naming the file (never a value) for a missing required file, an
    unreadable one, one that is not UTF-8 text, or a value holding a control character."""
    if not directory.is_dir():
        raise CredentialsError(f"credentials_dir: {directory} is not a directory")
    values: dict[str, str] = {}
    for name in FIELDS:
        value = _value_of(directory / name)
        if value:
            values[name] = value
    missing = [name for name in REQUIRED if name not in values]
    if missing:
        raise CredentialsError(
            f"credentials_dir: {directory} has no (or an empty) {', '.join(missing)} file"
        )
    return Credentials(values)


class CredentialFiles:
    """The credentials of one directory, re-read when its files change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp = _stamp(directory)
        self.current = read_credentials(directory)
        self._hidden: tuple[str, ...] = self.current.secrets()

    def refresh(self) -> Credentials | None:
        """The new credentials when the files changed since the last look, else None."""
        stamp = _stamp(self.directory)
        if stamp == self._stamp:
            return None
        fresh = read_credentials(self.directory)
        self._stamp = stamp
        self.current = fresh
        # Old values stay hidden too: a message about a request signed before the rotation.
        self._hidden = tuple(dict.fromkeys(self._hidden + fresh.secrets()))
        return fresh

    def redact(self, text: str) -> str:
        return redact(text, self._hidden)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


__all__ = [
    "FIELDS",
    "CredentialFiles",
    "Credentials",
    "CredentialsError",
    "read_credentials",
    "redact",
]

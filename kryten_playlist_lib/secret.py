"""The service secret: 32 random bytes, kept as 64 hex characters in `secret_path`.

`KRYTEN_PLAYLIST_SECRET` (the same 64 hex characters) wins over the file.
Every replica of a namespace must share it, so the file is created with
O_CREAT|O_EXCL: when two replicas start at once on a shared folder, one
writes and the other reads what it wrote. No message or log line ever holds
the secret.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from kryten_playlist_lib.config import SECRET_ENV_VAR, Config
from kryten_playlist_lib.errors import ConfigError

log = logging.getLogger("kryten_playlist.secret")

SECRET_BYTES = 32
SECRET_RE = re.compile(r"^[0-9a-fA-F]{64}$")
PARTIAL_RE = re.compile(r"^[0-9a-fA-F]{0,63}$")
# How long to wait for another process that has created the file but not yet written it.
WRITE_WAIT_SECONDS = 2.0
POLL_SECONDS = 0.02


def load_or_create_secret(config: Config, env: Mapping[str, str] | None = None) -> bytes:
    """The 32-byte secret: from the environment, else the file, else a new file."""
    env = os.environ if env is None else env
    if SECRET_ENV_VAR in env:
        return _decode(env[SECRET_ENV_VAR], SECRET_ENV_VAR)
    path = Path(config.secret_path)
    if path.exists():
        return _read_file(path)
    return _create_file(path)


def _decode(text: str, key: str) -> bytes:
    text = text.strip()
    if not SECRET_RE.match(text):
        raise ConfigError(key, f"must be {SECRET_BYTES * 2} hexadecimal characters")
    return bytes.fromhex(text)


def _read_file(path: Path) -> bytes:
    """Read the file, waiting briefly while a concurrent creator has not finished writing it."""
    deadline = time.monotonic() + WRITE_WAIT_SECONDS
    while True:
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("secret_path", f"cannot read {path}: {type(exc).__name__}") from exc
        if not PARTIAL_RE.match(text) or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if not SECRET_RE.match(text):
        raise ConfigError("secret_path", f"{path} does not hold {SECRET_BYTES * 2} hexadecimal characters "
                                         "(delete it to make a new secret; every session ends)")
    _warn_if_readable_by_others(path)
    return bytes.fromhex(text)


def _create_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_file(path)
    except OSError as exc:
        raise ConfigError("secret_path", f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.info("created the service key file %s (mode 0600)", path)
    return secret


def _warn_if_readable_by_others(path: Path) -> None:
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s can be read by other users; it should have mode 0600", path)

"""Admin commands over NATS request/reply, in both forms of nats.md section 1.

- native: `{pfx}.playlist.cmd.<command>` with `correlation_id`, `namespace`,
  `requested_by`; reply `{"correlation_id","status","error",...}`;
- ecosystem: `{pfx}.{service}.command` with the kryten-py envelope
  `{"command","args","meta"}`; reply `{"service","command","success",...}`.

Both are subscribed with the queue group `kryten-playlist.{namespace}`, so one
replica of a namespace answers. Handlers are plain functions run on a worker
thread; a `ServiceError` they raise becomes an error reply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kryten_playlist_lib.bus.bridge import NatsBridge
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.errors import ServiceError, ValidationError

log = logging.getLogger("kryten_playlist.commands")

NATIVE_FIELDS = ("correlation_id", "namespace", "requested_by")


@dataclass
class CommandRequest:
    command: str
    args: dict[str, Any]
    requested_by: str | None
    correlation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CommandHandler = Callable[[CommandRequest], dict[str, Any]]


class CommandError(Exception):
    """A request that cannot be handled; `correlation_id` is echoed when it could be read."""

    def __init__(self, message: str, correlation_id: str | None = None) -> None:
        super().__init__(message)
        self.correlation_id = correlation_id


class CommandRouter:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._handlers: dict[str, CommandHandler] = {}
        self._error_fields: dict[str, dict[str, Any]] = {}

    def register(self, name: str, handler: CommandHandler, error_fields: dict[str, Any] | None = None) -> None:
        """`error_fields` are the reply fields an error reply still carries (e.g. `snapshot_id: null`)."""
        self._handlers[name] = handler
        self._error_fields[name] = error_fields or {}

    @property
    def native_subject(self) -> str:
        return f"{self._config.nats_subject_prefix}.playlist.cmd.>"

    @property
    def ecosystem_subject(self) -> str:
        return f"{self._config.nats_subject_prefix}.{self._config.service_subject_name}.command"

    async def subscribe(self, bridge: NatsBridge) -> None:
        queue = f"kryten-playlist.{self._config.namespace}"
        await bridge.subscribe(self.native_subject, self.handle_native, queue=queue)
        await bridge.subscribe(self.ecosystem_subject, self.handle_ecosystem, queue=queue)

    # ---- native form -------------------------------------------------------

    def handle_native(self, subject: str, data: bytes) -> bytes | None:
        command = subject.rsplit(".", 1)[-1]
        try:
            body = _json_object(data)
            correlation_id = body.get("correlation_id") if isinstance(body.get("correlation_id"), str) else None
            for name in NATIVE_FIELDS:
                if not isinstance(body.get(name), str) or not body[name]:
                    raise CommandError(f"field '{name}' is missing or not a string", correlation_id)
            if body["namespace"] != self._config.namespace:
                return None  # another namespace's replica answers this one
            request = CommandRequest(command, body, body["requested_by"], correlation_id)
            fields = self._dispatch(request)
            reply: dict[str, Any] = {"correlation_id": correlation_id, "status": "ok", "error": None, **fields}
        except CommandError as exc:
            reply = {"correlation_id": exc.correlation_id, "status": "error", "error": str(exc),
                     **self._error_fields.get(command, {})}
        return _encode(reply)

    # ---- ecosystem form ----------------------------------------------------

    def handle_ecosystem(self, subject: str, data: bytes) -> bytes | None:
        service = self._config.service_subject_name
        command = None
        try:
            body = _json_object(data)
            command = body.get("command")
            if not isinstance(command, str) or not command:
                raise CommandError("field 'command' is missing or not a string")
            args = body.get("args", {})
            meta = body.get("meta", {})
            if not isinstance(args, dict) or not isinstance(meta, dict):
                raise CommandError("fields 'args' and 'meta' must be objects")
            requested_by = args.get("requested_by") or meta.get("source")
            request = CommandRequest(command, args, requested_by if isinstance(requested_by, str) else None,
                                     meta.get("request_id") if isinstance(meta.get("request_id"), str) else None)
            data_fields = self._dispatch(request)
            reply: dict[str, Any] = {"service": service, "command": command, "success": True, "data": data_fields}
        except CommandError as exc:
            reply = {"service": service, "command": command, "success": False, "error": str(exc)}
        return _encode(reply)

    # ---- shared ------------------------------------------------------------

    def _dispatch(self, request: CommandRequest) -> dict[str, Any]:
        handler = self._handlers.get(request.command)
        if handler is None:
            raise CommandError(f"unknown command '{request.command}'", request.correlation_id)
        try:
            return handler(request)
        except ValidationError as exc:
            problems = "; ".join(f"field '{name}' {problem}" for name, problem in exc.fields.items())
            raise CommandError(problems, request.correlation_id) from exc
        except ServiceError as exc:
            raise CommandError(exc.message, request.correlation_id) from exc
        except Exception:
            log.exception("command %s failed", request.command)
            raise CommandError("internal error; the service log has the details", request.correlation_id) from None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    # RecursionError: a deeply nested payload would otherwise escape the handler and the caller gets no reply.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CommandError("the request is not valid JSON") from None
    if not isinstance(body, dict):
        raise CommandError("the request must be a JSON object")
    return body


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode("utf-8")

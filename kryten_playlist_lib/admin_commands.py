"""The admin commands of nats.md section 1: their handlers and who may run them.

`requested_by` is a CyTube username whose role is resolved exactly as for a
web session; the RBAC table decides. Dispatch and reply shapes are in
`bus/commands.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kryten_playlist_lib.auth.acl import check_username
from kryten_playlist_lib.bus.commands import CommandRequest
from kryten_playlist_lib.catalog.refresh import RefreshFailed
from kryten_playlist_lib.domain.rbac import User, can, required_role
from kryten_playlist_lib.errors import ServiceError, ValidationError

if TYPE_CHECKING:
    from kryten_playlist_lib.service import PlaylistService

Handler = Callable[[CommandRequest], dict[str, Any]]


def register_admin_commands(service: PlaylistService) -> None:
    router = service.commands

    def gated(action: str, handler: Handler) -> Handler:
        def run(request: CommandRequest) -> dict[str, Any]:
            requester = check_username(request.requested_by, "requested_by")
            if not can(service.roles.role_of(requester), action):
                raise ServiceError("forbidden", f"{request.command} needs the {required_role(action)} role")
            return handler(request)
        return run

    def catalog_refresh(_request: CommandRequest) -> dict[str, Any]:
        try:
            job = service.refresh.begin()
        except ServiceError as exc:
            if exc.code == "refresh_in_progress":
                raise ServiceError("refresh_in_progress", "refresh already running") from exc
            raise
        try:
            return {"snapshot_id": service.refresh.run(job).snapshot_id}
        except RefreshFailed as exc:
            raise ServiceError("internal", f"refresh failed: {exc}") from exc

    def blessed_add(request: CommandRequest) -> dict[str, Any]:
        service.acl.bless(request.args.get("username"))
        return {}

    def blessed_remove(request: CommandRequest) -> dict[str, Any]:
        service.acl.unbless(request.args.get("username"))
        return {}

    def queue_apply(request: CommandRequest) -> dict[str, Any]:
        requester = check_username(request.requested_by, "requested_by")
        user = User(requester, service.roles.role_of(requester))
        job = service.queue.begin(_playlist_id(request.args), request.args.get("mode", "preserve_current"), user)
        answer = service.queue.run(job)
        return {key: answer[key] for key in ("enqueued_count", "failed", "removed_count")}

    def _playlist_id(args: dict[str, Any]) -> str:
        if isinstance(args.get("playlist_id"), str):
            return args["playlist_id"]
        name = args.get("playlist_name")
        if not isinstance(name, str):
            raise ValidationError({"playlist_id": "give playlist_id or playlist_name"})
        return service.playlists.id_for_name(name)

    router.register("queue_apply", gated("queue.apply", queue_apply),
                    {"enqueued_count": 0, "failed": [], "removed_count": 0})
    router.register("catalog_refresh", gated("catalog.refresh", catalog_refresh), {"snapshot_id": None})
    router.register("blessed_add", gated("acl.manage", blessed_add))
    router.register("blessed_remove", gated("acl.manage", blessed_remove))
    router.register("blessed_list", gated("acl.manage", lambda _r: {"blessed": service.acl.blessed()}),
                    {"blessed": []})
    router.register("admins_list", gated("acl.manage", lambda _r: {"admins": service.acl.admins()}),
                    {"admins": []})

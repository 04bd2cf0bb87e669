"""One-time-code sign-in and IP blocks, in the exact order of behaviour.md section 2.

Every count (attempts, rate limits) is a compare-and-set in KV, so the three
attempts of a code are a hard cap even under many parallel guesses on many
replicas; two parallel correct verifies make exactly one session because the
stored request is deleted with a revision check.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from kryten_playlist_lib.auth.acl import check_username
from kryten_playlist_lib.auth.limits import RateLimits
from kryten_playlist_lib.auth.roles import RoleResolver
from kryten_playlist_lib.auth.sessions import Sessions
from kryten_playlist_lib.bus.keys import encode_segment, user_segment
from kryten_playlist_lib.bus.kv import KvStore
from kryten_playlist_lib.bus.robot import RobotClient
from kryten_playlist_lib.config import Config
from kryten_playlist_lib.domain.otp import code_hash, code_matches, new_code, pm_text
from kryten_playlist_lib.domain.rbac import User, can
from kryten_playlist_lib.errors import RateLimited, ServiceError, ValidationError
from kryten_playlist_lib.timeutil import is_expired, iso, iso_in, parse_iso, utcnow

BUCKET = "auth"
ATTEMPTS = 3
UNSOLICITED_SECONDS = 600
VERIFY_RETRY_SECONDS = 5.0
MAX_CODE_INPUT = 64


def _seconds_until(moment: str) -> int:
    return max(0, round((parse_iso(moment) - utcnow()).total_seconds()))


class SignIn:
    def __init__(self, config: Config, kv: KvStore, limits: RateLimits, sessions: Sessions,
                 roles: RoleResolver, robot: RobotClient, secret: Callable[[], bytes]) -> None:
        self._config = config
        self._kv = kv
        self._limits = limits
        self._sessions = sessions
        self._roles = roles
        self._robot = robot
        self._secret = secret

    # ---- blocks and locks --------------------------------------------------------

    def ip_block_seconds(self, ip: str) -> int:
        """Seconds left of a block on `ip`, 0 when it is not blocked."""
        entry = self._kv.get(BUCKET, f"ipblock/{encode_segment(ip)}")
        return _seconds_until(entry.value["blocked_until"]) if entry else 0

    def _lock_key(self, username: str, ip: str) -> str:
        return f"otp/lock/{user_segment(username)}/{encode_segment(ip)}"

    def _pair_lock_seconds(self, username: str, ip: str) -> int:
        entry = self._kv.get(BUCKET, self._lock_key(username, ip))
        return _seconds_until(entry.value["locked_until"]) if entry else 0

    def _lock_pair(self, username: str, ip: str) -> None:
        until = iso_in(self._config.otp_lockout_seconds)
        self._kv.put(BUCKET, self._lock_key(username, ip),
                     {"locked_until": until, "expires_at": until, "schema_version": 1})

    # ---- request -----------------------------------------------------------------

    def request_code(self, body: dict[str, Any], ip: str, user_agent: str) -> dict[str, Any]:
        blocked = self.ip_block_seconds(ip)
        if blocked:
            raise ServiceError("ip_blocked", "This address is blocked from signing in.",
                               {"retry_after_seconds": blocked})
        username = check_username(body.get("username"))
        self._limits.hit("otp_request_user", username.lower())
        self._limits.hit("otp_request_ip", ip)
        locked = self._pair_lock_seconds(username, ip)
        if locked:
            raise RateLimited(locked, "Too many wrong codes; try again later.", {"reason": "locked"})
        recipient = self._channel_name(username)
        code = new_code(self._config.otp_length)
        now = utcnow()
        key = f"otp/request/{user_segment(username)}"
        revision = self._kv.put(BUCKET, key, {
            "requested_at": iso(now), "expires_at": iso_in(self._config.otp_ttl_seconds, now),
            "request_ip": ip, "request_user_agent": user_agent[:200],
            "otp_hash": code_hash(self._secret(), username, code), "attempts_remaining": ATTEMPTS,
            "schema_version": 1})
        try:
            self._robot.pm(recipient, pm_text(self._config.service_name, code, self._config.otp_ttl_seconds))
        except ServiceError:
            self._kv.delete(BUCKET, key, revision=revision)
            raise
        return {"status": "sent", "expires_in_seconds": self._config.otp_ttl_seconds}

    def _channel_name(self, username: str) -> str:
        """The name as the channel spells it; 409 when the userlist is known and lacks the user."""
        users = self._robot.userlist()
        if users is None:
            return username
        for user in users:
            if str(user.get("name", "")).lower() == username.lower():
                return str(user["name"])
        raise ServiceError("user_not_in_channel", f"{username} is not in the channel right now; join it first.")

    # ---- verify ------------------------------------------------------------------

    def verify_code(self, body: dict[str, Any], ip: str) -> tuple[dict[str, Any], str | None]:
        """The verify answer, and the new session id when it is `ok`."""
        blocked = self.ip_block_seconds(ip)
        if blocked:
            return _locked(blocked), None
        username = check_username(body.get("username"))
        code = body.get("otp")
        if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_INPUT:
            raise ValidationError({"otp": "must be the code from the private message"})
        locked = self._pair_lock_seconds(username, ip)
        if locked:
            return _locked(locked), None
        self._limits.hit("otp_verify_user", username.lower())
        self._limits.hit("otp_verify_ip", ip)
        return self._check_code(username, code, ip)

    def _check_code(self, username: str, code: str, ip: str) -> tuple[dict[str, Any], str | None]:
        key = f"otp/request/{user_segment(username)}"
        deadline = time.monotonic() + VERIFY_RETRY_SECONDS
        consumed_by_another = False
        while time.monotonic() < deadline:
            entry = self._kv.get_raw(BUCKET, key)
            if entry is None:
                # A parallel verify with the same right code won: "used", not "unrequested".
                return (_locked(0) if consumed_by_another else self._no_request(username, ip)), None
            request = entry.value
            if is_expired(request):
                self._kv.delete(BUCKET, key, revision=entry.revision)
                return _locked(0), None
            if request.get("attempts_remaining", 0) <= 0:
                return _locked(self._pair_lock_seconds(username, ip)), None
            if code_matches(self._secret(), username, code, request["otp_hash"]):
                if self._kv.delete(BUCKET, key, revision=entry.revision):
                    return self._signed_in(username, ip)
                consumed_by_another = True
                continue  # changed meanwhile (a parallel verify or guess): look again
            remaining = request["attempts_remaining"] - 1
            revision = self._kv.compare_and_set(BUCKET, key, {**request, "attempts_remaining": remaining},
                                                entry.revision)
            if revision is None:
                continue
            if remaining > 0:
                return {"status": "invalid", "attempts_remaining": remaining}, None
            # The lock is written before the request goes, so a parallel guess that finds no
            # request also finds the lock and answers `locked`, never `unrequested`.
            self._lock_pair(username, ip)
            self._kv.delete(BUCKET, key, revision=revision)
            return _locked(self._config.otp_lockout_seconds), None
        raise ServiceError("nats_unavailable", "Too many sign-in attempts at once; try again.")

    def _no_request(self, username: str, ip: str) -> dict[str, Any]:
        locked = self._pair_lock_seconds(username, ip)
        if locked:
            return _locked(locked)
        self._kv.put(BUCKET, f"unsolicited/{encode_segment(ip)}",
                     {"username": username.lower(), "expires_at": iso_in(UNSOLICITED_SECONDS), "schema_version": 1})
        return {"status": "unrequested", "can_block_ip": True,
                "default_block_hours": self._config.otp_unsolicited_block_hours_default}

    def _signed_in(self, username: str, ip: str) -> tuple[dict[str, Any], str]:
        role = self._roles.role_of(username)
        session_id, _document = self._sessions.create(username, role, ip)
        return {"status": "ok", "role": role}, session_id

    # ---- IP blocks -----------------------------------------------------------------

    def ip_block(self, body: dict[str, Any], client_ip: str, user: User | None) -> dict[str, Any]:
        is_admin = user is not None and can(user.role, "ipblock.any")
        if not is_admin and self.ip_block_seconds(client_ip):
            raise ServiceError("ip_blocked", "This address is blocked.",
                               {"retry_after_seconds": self.ip_block_seconds(client_ip)})
        action = body.get("action")
        if action == "unblock":
            if not is_admin:
                raise ServiceError("forbidden", "Only an admin can unblock an address.", {"required_role": "admin"})
            target = _check_ip(body.get("ip"))
            self._kv.delete(BUCKET, f"ipblock/{encode_segment(target)}")
            return {"status": "unblocked"}
        if action != "block":
            raise ValidationError({"action": "must be block or unblock"})
        target = self._block_target(body, client_ip, is_admin)
        hours = body.get("hours", self._config.otp_unsolicited_block_hours_default)
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= self._config.max_ip_block_hours:
            raise ValidationError({"hours": f"must be a whole number from 1 to {self._config.max_ip_block_hours}"})
        until = iso_in(hours * 3600)
        self._kv.put(BUCKET, f"ipblock/{encode_segment(target)}", {
            "blocked_until": until, "reason": "admin_action" if is_admin else "otp_unsolicited",
            "created_at": iso(utcnow()), "expires_at": until, "schema_version": 1})
        if not is_admin:
            self._kv.delete(BUCKET, f"unsolicited/{encode_segment(client_ip)}")
        return {"status": "blocked", "blocked_until": until}

    def _block_target(self, body: dict[str, Any], client_ip: str, is_admin: bool) -> str:
        """An admin may name any address; anyone else only their own, after an `unrequested`."""
        if is_admin:
            return _check_ip(body["ip"]) if body.get("ip") is not None else client_ip
        named = body.get("ip")
        allowed = self._kv.get(BUCKET, f"unsolicited/{encode_segment(client_ip)}") is not None
        if not allowed or (named is not None and named != client_ip):
            raise ServiceError("forbidden", "You can only block your own address, right after a code you did "
                               "not request.", {"reason": "not_unsolicited"})
        return client_ip


def _locked(retry_after_seconds: int) -> dict[str, Any]:
    return {"status": "locked", "retry_after_seconds": retry_after_seconds}


def _check_ip(value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError({"ip": "must be an IPv4 or IPv6 address"}) from None

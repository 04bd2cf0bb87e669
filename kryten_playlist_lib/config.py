"""The service configuration: one flat JSON file, then `KRYTEN_PLAYLIST_<KEY>` variables over it.

`load_config` reads both, `Config.from_mapping` builds and checks the result.
Every bad value raises `ConfigError` naming its key (the CLI turns it into
exit 2). Choices operations.md leaves open are written down in
spec/configuration.md.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kryten_playlist_lib.errors import ConfigError

log = logging.getLogger("kryten_playlist.config")

ENV_PREFIX = "KRYTEN_PLAYLIST_"
# The secret shares the prefix but is read by secret.py, never stored in Config.
SECRET_ENV_VAR = "KRYTEN_PLAYLIST_SECRET"
DEFAULT_CONFIG_FILE = "config.json"
MANIFEST_ALIAS = "mediacms_manifest_base_url"
MANIFEST_SUFFIX = "{video_id}.json?format=json"
MASK = "***"

USERNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SUBJECT_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
NATS_SCHEMES = ("nats://", "tls://", "ws://", "wss://")
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "NOTSET")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Config:
    service_name: str = "playlist"
    namespace: str = "default"
    nats_url: str | list[str] = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: str | None = None
    nats_token: str | None = None
    nats_creds: str | None = None
    nats_tls_ca: str | None = None
    nats_subject_prefix: str = "kryten"
    nats_embedded: bool = False
    nats_server_path: str | None = None
    cytube_domain: str = "cytu.be"
    cytube_channel: str = "lounge"
    http_host: str = "127.0.0.1"
    http_port: int = 8088
    http_threads: int = 16
    sqlite_path: str = "./data/catalog.sqlite3"
    state_path: str = "./data/state.sqlite3"
    secret_path: str = "./data/secret.key"
    initial_admins: list[str] = field(default_factory=list)
    blessed_users: list[str] = field(default_factory=list)
    admin_min_rank: int | None = None
    blessed_min_rank: int | None = None
    allow_hard_replace_for_blessed: bool = False
    otp_ttl_seconds: int = 300
    otp_length: int = 8
    otp_lockout_seconds: int = 3600
    otp_unsolicited_block_hours_default: int = 72
    max_ip_block_hours: int = 720
    session_ttl_seconds: int = 43200
    otp_request_per_user: int = 3
    otp_request_per_user_window_seconds: int = 900
    otp_request_per_ip: int = 10
    otp_request_per_ip_window_seconds: int = 900
    otp_verify_per_user: int = 10
    otp_verify_per_user_window_seconds: int = 900
    otp_verify_per_ip: int = 20
    otp_verify_per_ip_window_seconds: int = 900
    like_per_user: int = 10
    like_per_user_window_seconds: int = 60
    like_dedupe_window_seconds: int = 86400
    trusted_proxies: list[str] = field(default_factory=list)
    cookie_secure: str | bool = "auto"
    catalog_public: bool = True
    catalog_connector: str = "mediacms"
    mediacms_base_url: str | None = None
    mediacms_token: str | None = None
    manifest_url_template: str = (
        "https://www.420grindhouse.com/api/v1/media/cytube/{video_id}.json?format=json")
    refresh_min_ratio: float = 0.5
    keep_snapshots: int = 2
    max_playlist_items: int = 2000
    queue_temp: bool = True
    queue_add_burst: int = 10
    queue_add_rate_per_second: float = 2
    robot_timeout_seconds: float = 10
    kv_replicas: int = 1
    log_level: str = "INFO"
    log_json: bool = False
    disable_auth: bool = False
    # Keys of the loaded file/environment that no field takes; filled by from_mapping.
    unknown_keys: list[str] = field(default_factory=list, init=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        self.log_level = self.log_level.upper()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Config:
        """Build from flat keys (upstream format too); unknown keys are warned about once."""
        values = {key: value for key, value in data.items() if key in CONFIG_KEYS}
        if MANIFEST_ALIAS in data and "manifest_url_template" not in data:
            values["manifest_url_template"] = _template_from_base_url(data[MANIFEST_ALIAS])
        unknown = sorted(key for key in data if key not in CONFIG_KEYS and key != MANIFEST_ALIAS)
        config = cls(**values)
        config.unknown_keys = unknown
        if unknown:
            log.warning("ignoring config keys this service does not use: %s", ", ".join(unknown))
        if config.disable_auth:
            log.warning("disable_auth is on: every request acts as the admin 'local' (loopback only)")
        return config

    def nats_servers(self) -> list[str]:
        """The NATS URLs; a string may hold several separated by commas, as in NATS tools."""
        urls = self.nats_url.split(",") if isinstance(self.nats_url, str) else self.nats_url
        return [url.strip() for url in urls if url.strip()]

    @property
    def service_subject_name(self) -> str:
        """`service_name` as a single NATS subject token (nats.md: `{pfx}.{service}.command`)."""
        return self.service_name.lower().replace(".", "-")

    def trusted_proxy_networks(self) -> list[Network]:
        """`trusted_proxies` parsed; a bare address is a one-address network."""
        return [ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies]

    def masked(self) -> dict[str, Any]:
        """The effective config as JSON-able data, with every secret value replaced by `***`."""
        data = asdict(self)
        del data["unknown_keys"]
        for key in ("nats_password", "nats_token", "mediacms_token"):
            if data[key] is not None:
                data[key] = MASK
        if isinstance(self.nats_url, str):
            data["nats_url"] = ",".join(_mask_url(url) for url in self.nats_url.split(","))
        else:
            data["nats_url"] = [_mask_url(url) for url in self.nats_url]
        return data


CONFIG_KEYS = frozenset(f.name for f in fields(Config) if f.init)
# Keys holding plain text: an environment value like `2024` or `true` stays text for them,
# so a numeric channel name or password need not be JSON-quoted.
TEXT_KEYS = frozenset({MANIFEST_ALIAS} | {f.name for f in fields(Config) if f.type in ("str", "str | None")})


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (default `./config.json` when it exists), then the environment over it."""
    if path is None and os.path.exists(DEFAULT_CONFIG_FILE):
        path = DEFAULT_CONFIG_FILE
    data = _read_file(path) if path is not None else {}
    data.update(_read_env(os.environ if env is None else env))
    return Config.from_mapping(data)


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read the config file: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(path, f"the config file is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "the config file must hold one JSON object of flat keys")
    return data


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """`KRYTEN_PLAYLIST_<KEY>` values by key; an unknown variable keeps its own name so it is reported."""
    values: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == SECRET_ENV_VAR:
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in CONFIG_KEYS or key == MANIFEST_ALIAS:
            values[key] = _parse_env_value(key, raw)
        else:
            values[name] = raw
    return values


def _parse_env_value(key: str, raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if key in TEXT_KEYS and value is not None and not isinstance(value, str):
        return raw
    return value


def _template_from_base_url(base: Any) -> str:
    """Upstream gave a base URL; a value already holding `{video_id}` is taken as the template."""
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(MANIFEST_ALIAS, "must be a non-empty URL string")
    if "{video_id}" in base:
        return base
    return base.rstrip("/") + "/" + MANIFEST_SUFFIX


def _mask_url(url: str) -> str:
    """Hide the password (or a bare token) in `scheme://user:pass@host`, keep the user name."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:{MASK}@{hostpart}" if colon else f"{scheme}://{MASK}@{hostpart}"


# ---------------------------------------------------------------------------------------------
# Validation

BOOL_KEYS = ("nats_embedded", "allow_hard_replace_for_blessed", "catalog_public", "queue_temp",
             "log_json", "disable_auth")
REQUIRED_TEXT_KEYS = ("cytube_domain", "cytube_channel", "http_host", "sqlite_path", "state_path",
                      "secret_path", "catalog_connector")
OPTIONAL_TEXT_KEYS = ("nats_user", "nats_password", "nats_token", "nats_creds", "nats_tls_ca",
                      "nats_server_path", "mediacms_token")
PATTERN_KEYS = {"namespace": NAMESPACE_RE, "service_name": SERVICE_NAME_RE,
                "nats_subject_prefix": SUBJECT_PREFIX_RE}
# (minimum, maximum or None); every key not listed here with an int type starts at 1.
INT_RANGES: dict[str, tuple[int, int | None]] = {
    "http_port": (0, 65535),  # 0 asks the OS for a free port (tests, demo)
    "otp_length": (6, 32),
    "kv_replicas": (1, 5),
    "like_dedupe_window_seconds": (0, None),  # 0 turns like dedupe off
}
POSITIVE_INT_KEYS = (
    "http_threads", "otp_ttl_seconds", "otp_lockout_seconds", "otp_unsolicited_block_hours_default",
    "max_ip_block_hours", "session_ttl_seconds", "otp_request_per_user",
    "otp_request_per_user_window_seconds", "otp_request_per_ip", "otp_request_per_ip_window_seconds",
    "otp_verify_per_user", "otp_verify_per_user_window_seconds", "otp_verify_per_ip",
    "otp_verify_per_ip_window_seconds", "like_per_user", "like_per_user_window_seconds",
    "keep_snapshots", "max_playlist_items", "queue_add_burst",
)
OPTIONAL_RANK_KEYS = ("admin_min_rank", "blessed_min_rank")


def _validate(config: Config) -> None:
    _check_types(config)
    _check_ints(config)
    for key, pattern in PATTERN_KEYS.items():
        if not isinstance(getattr(config, key), str) or not pattern.match(getattr(config, key)):
            raise ConfigError(key, f"must match {pattern.pattern}")
    _check_number("refresh_min_ratio", config.refresh_min_ratio, lambda v: 0 <= v <= 1,
                  "a number from 0 to 1")
    _check_number("queue_add_rate_per_second", config.queue_add_rate_per_second, lambda v: v > 0,
                  "a number above 0")
    _check_number("robot_timeout_seconds", config.robot_timeout_seconds, lambda v: v > 0,
                  "a number above 0")
    _check_nats_url(config)
    for key in ("initial_admins", "blessed_users"):
        _check_usernames(key, getattr(config, key))
    _check_trusted_proxies(config)
    _check_choices(config)
    _check_urls(config)
    _check_disable_auth(config)


def _check_types(config: Config) -> None:
    for key in BOOL_KEYS:
        if not isinstance(getattr(config, key), bool):
            raise ConfigError(key, "must be true or false")
    for key in REQUIRED_TEXT_KEYS:
        value = getattr(config, key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(key, "must be a non-empty string")
    for key in OPTIONAL_TEXT_KEYS:
        if getattr(config, key) is not None and not isinstance(getattr(config, key), str):
            raise ConfigError(key, "must be a string or null")


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but `true` for a port is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ints(config: Config) -> None:
    ranges = {**{key: (1, None) for key in POSITIVE_INT_KEYS}, **INT_RANGES}
    for key, (low, high) in ranges.items():
        value = getattr(config, key)
        if not _is_int(value) or value < low or (high is not None and value > high):
            upper = f" to {high}" if high is not None else " or more"
            raise ConfigError(key, f"must be an integer, {low}{upper}")
    for key in OPTIONAL_RANK_KEYS:
        value = getattr(config, key)
        if value is not None and (not _is_int(value) or value < 0):
            raise ConfigError(key, "must be null or a CyTube rank (an integer, 0 or more)")
    if config.otp_unsolicited_block_hours_default > config.max_ip_block_hours:
        raise ConfigError("otp_unsolicited_block_hours_default", "must not exceed max_ip_block_hours")


def _check_number(key: str, value: Any, ok: Callable[[float], bool], wanted: str) -> None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or not ok(value):
        raise ConfigError(key, f"must be {wanted}")


def _check_nats_url(config: Config) -> None:
    url = config.nats_url
    if isinstance(url, list):
        if not url or not all(isinstance(entry, str) for entry in url):
            raise ConfigError("nats_url", "must be a string or a non-empty list of strings")
    elif not isinstance(url, str):
        raise ConfigError("nats_url", "must be a string or a non-empty list of strings")
    servers = config.nats_servers()
    if not servers:
        raise ConfigError("nats_url", "names no server")
    for index, server in enumerate(servers):
        if not server.startswith(NATS_SCHEMES):
            # The index, not the URL: the URL may carry a password.
            raise ConfigError("nats_url", f"server {index + 1} must start with " + ", ".join(NATS_SCHEMES))


def _check_usernames(key: str, names: Any) -> None:
    if not isinstance(names, list):
        raise ConfigError(key, "must be a list of CyTube usernames")
    for name in names:
        if not isinstance(name, str) or not USERNAME_RE.match(name):
            raise ConfigError(key, f"{name!r} is not a CyTube username ({USERNAME_RE.pattern})")


def _check_trusted_proxies(config: Config) -> None:
    entries = config.trusted_proxies
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise ConfigError("trusted_proxies", "must be a list of IP addresses or CIDR networks")
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ConfigError("trusted_proxies", f"{entry!r} is not an IP address or CIDR network") from exc


def _check_choices(config: Config) -> None:
    if config.cookie_secure != "auto" and not isinstance(config.cookie_secure, bool):
        raise ConfigError("cookie_secure", 'must be "auto", true or false')
    if not isinstance(config.log_level, str) or config.log_level.upper() not in LOG_LEVELS:
        raise ConfigError("log_level", "must be one of " + ", ".join(LOG_LEVELS))


def _check_urls(config: Config) -> None:
    template = config.manifest_url_template
    if not isinstance(template, str) or "{video_id}" not in template:
        raise ConfigError("manifest_url_template", "must be a URL string containing {video_id}")
    try:
        template.format(video_id="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError("manifest_url_template", "may hold no placeholder other than {video_id}") from exc
    base = config.mediacms_base_url
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        raise ConfigError("mediacms_base_url", "must be null or an http:// or https:// URL")


def _check_disable_auth(config: Config) -> None:
    if config.disable_auth and not is_loopback_host(config.http_host):
        raise ConfigError("disable_auth", f"true is only allowed when http_host is a loopback address, "
                                          f"not {config.http_host!r}")


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and any loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

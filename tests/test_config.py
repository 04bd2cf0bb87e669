"""Config loading: defaults, upstream files, environment overrides, validation, masking."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from kryten_playlist_lib.config import Config, load_config
from kryten_playlist_lib.errors import ConfigError

DEFAULT_TEMPLATE = "https://www.420grindhouse.com/api/v1/media/cytube/{video_id}.json?format=json"


def write_config(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config == Config()
    assert config.service_name == "playlist"
    assert config.namespace == "default"
    assert config.nats_servers() == ["nats://127.0.0.1:4222"]
    assert config.http_host == "127.0.0.1" and config.http_port == 8088 and config.http_threads == 16
    assert config.secret_path == "./data/secret.key"
    assert config.initial_admins == [] and config.trusted_proxies == []
    assert config.admin_min_rank is None and config.blessed_min_rank is None
    assert (config.otp_request_per_user, config.otp_request_per_user_window_seconds) == (3, 900)
    assert (config.otp_request_per_ip, config.otp_request_per_ip_window_seconds) == (10, 900)
    assert (config.otp_verify_per_user, config.otp_verify_per_user_window_seconds) == (10, 900)
    assert (config.otp_verify_per_ip, config.otp_verify_per_ip_window_seconds) == (20, 900)
    assert (config.like_per_user, config.like_per_user_window_seconds) == (10, 60)
    assert config.cookie_secure == "auto" and config.catalog_public is True
    assert config.manifest_url_template == DEFAULT_TEMPLATE
    assert config.queue_add_rate_per_second == 2 and config.kv_replicas == 1
    assert config.disable_auth is False and config.unknown_keys == []


def test_default_file_in_working_directory_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, {"namespace": "fromfile"})
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).namespace == "fromfile"


def test_upstream_format_file_loads(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"nats_url": "nats://localhost:4222", "nats_subject_prefix": "cytube",
                                   "service_name": "kryten-playlist"})
    config = load_config(path, env={})
    assert config.nats_servers() == ["nats://localhost:4222"]
    assert config.nats_subject_prefix == "cytube"
    assert config.service_subject_name == "kryten-playlist"
    assert config.unknown_keys == []


def test_unknown_keys_warned_once_and_listed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, {"http_log_level": "warning", "catalog_refresh_watcher_enabled": True,
                                   "disable_auth": False, "namespace": "x"})
    with caplog.at_level(logging.WARNING, logger="kryten_playlist.config"):
        config = load_config(path, env={"KRYTEN_PLAYLIST_TYPO": "1"})
    assert config.unknown_keys == ["KRYTEN_PLAYLIST_TYPO", "catalog_refresh_watcher_enabled", "http_log_level"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "http_log_level" in warnings[0].getMessage()
    assert "catalog_refresh_watcher_enabled" in warnings[0].getMessage()


def test_known_keys_give_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kryten_playlist.config"):
        load_config(write_config(tmp_path, {"namespace": "x"}), env={"KRYTEN_PLAYLIST_SECRET": "ab" * 32})
    assert caplog.records == []


def test_env_overrides_file_with_json_and_plain_strings(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"http_port": 1234, "namespace": "fromfile"})
    config = load_config(path, env={
        "KRYTEN_PLAYLIST_HTTP_PORT": "9000",
        "KRYTEN_PLAYLIST_INITIAL_ADMINS": '["alice"]',
        "KRYTEN_PLAYLIST_NAMESPACE": "prod",
        "KRYTEN_PLAYLIST_CATALOG_PUBLIC": "false",
        "KRYTEN_PLAYLIST_NATS_URL": '["nats://a:4222", "tls://b:4222"]',
        "OTHER_HTTP_PORT": "1",
    })
    assert config.http_port == 9000
    assert config.initial_admins == ["alice"]
    assert config.namespace == "prod"
    assert config.catalog_public is False
    assert config.nats_servers() == ["nats://a:4222", "tls://b:4222"]


def test_env_text_keys_keep_numeric_looking_text() -> None:
    config = load_config(None, env={"KRYTEN_PLAYLIST_NAMESPACE": "2024", "KRYTEN_PLAYLIST_NATS_PASSWORD": "123",
                                    "KRYTEN_PLAYLIST_CYTUBE_CHANNEL": '"quoted"',
                                    "KRYTEN_PLAYLIST_NATS_TOKEN": "null"})
    assert config.namespace == "2024"
    assert config.nats_password == "123"
    assert config.cytube_channel == "quoted"
    assert config.nats_token is None


def test_env_bad_value_names_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"KRYTEN_PLAYLIST_HTTP_PORT": "high"})
    assert info.value.key == "http_port"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "null"])
def test_file_that_is_not_one_object_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.json")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert path in str(info.value)


BAD_VALUES = [
    ("http_port", 70000), ("http_port", -1), ("http_port", "8088"), ("http_port", True), ("http_port", 80.0),
    ("http_threads", 0), ("otp_ttl_seconds", 0), ("otp_length", 5), ("otp_length", 33),
    ("otp_lockout_seconds", None), ("session_ttl_seconds", -5), ("max_ip_block_hours", 0),
    ("otp_unsolicited_block_hours_default", 1000),
    ("otp_request_per_user", 0), ("otp_request_per_user_window_seconds", 0), ("otp_request_per_ip", "10"),
    ("otp_verify_per_user", False), ("otp_verify_per_ip_window_seconds", 0), ("like_per_user", 0),
    ("like_per_user_window_seconds", 0), ("like_dedupe_window_seconds", -1),
    ("keep_snapshots", 0), ("max_playlist_items", 0), ("queue_add_burst", 0), ("kv_replicas", 0),
    ("kv_replicas", 6), ("admin_min_rank", -1), ("blessed_min_rank", "2"),
    ("refresh_min_ratio", 1.5), ("refresh_min_ratio", -0.1), ("refresh_min_ratio", True),
    ("queue_add_rate_per_second", 0), ("queue_add_rate_per_second", "2"), ("robot_timeout_seconds", 0),
    ("nats_embedded", "yes"), ("queue_temp", 1), ("log_json", None), ("disable_auth", "false"),
    ("catalog_public", 0), ("allow_hard_replace_for_blessed", "true"),
    ("initial_admins", "alice"), ("initial_admins", ["bad name"]), ("initial_admins", ["a" * 21]),
    ("blessed_users", [3]), ("blessed_users", ["ok", "no!"]),
    ("trusted_proxies", ["not-an-ip"]), ("trusted_proxies", "10.0.0.1"), ("trusted_proxies", ["10.0.0.0/33"]),
    ("log_level", "LOUD"), ("log_level", 10),
    ("namespace", "has space"), ("namespace", ""), ("namespace", "x" * 65), ("namespace", 5),
    ("service_name", "a b"), ("service_name", ""), ("nats_subject_prefix", "kryten.*"),
    ("nats_subject_prefix", ""), ("cytube_channel", ""), ("cytube_channel", None), ("cytube_domain", ""),
    ("http_host", ""), ("sqlite_path", None), ("state_path", 3), ("secret_path", ""),
    ("catalog_connector", ""), ("nats_user", 5), ("nats_password", ["x"]), ("mediacms_token", 1),
    ("nats_url", "http://localhost:4222"), ("nats_url", []), ("nats_url", ["nats://a", 5]), ("nats_url", 4222),
    ("nats_url", ""), ("nats_url", ["nats://a:4222", "localhost:4222"]),
    ("cookie_secure", "yes"), ("cookie_secure", 1), ("cookie_secure", None),
    ("manifest_url_template", "https://example.com/media/"), ("manifest_url_template", 5),
    ("manifest_url_template", "https://example.com/{video_id}/{other}"),
    ("mediacms_base_url", "ftp://example.com"), ("mediacms_manifest_base_url", ""),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_value_raises_config_error_naming_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({key: value})
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize("value", ["s3cr3t-value", ["s3cr3t-value"]])
def test_secret_values_never_in_errors(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"nats_url": f"http://user:{value}@host" if isinstance(value, str) else value,
                             "nats_password": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(info.value)


@pytest.mark.parametrize(("key", "value"), [
    ("http_port", 0), ("http_port", 65535), ("otp_length", 6), ("otp_length", 32), ("kv_replicas", 5),
    ("refresh_min_ratio", 0), ("refresh_min_ratio", 1), ("queue_add_rate_per_second", 0.5),
    ("like_dedupe_window_seconds", 0), ("admin_min_rank", 0), ("cookie_secure", True),
    ("cookie_secure", False), ("trusted_proxies", ["10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]),
    ("log_level", "debug"), ("nats_url", "nats://a:4222,tls://b:4222"), ("initial_admins", ["Alice_1", "b-2"]),
])
def test_edge_values_accepted(key: str, value: Any) -> None:
    assert Config.from_mapping({key: value}) is not None


def test_log_level_is_normalized() -> None:
    assert Config.from_mapping({"log_level": "warning"}).log_level == "WARNING"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_disable_auth_on_loopback_is_accepted_with_warning(host: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kryten_playlist.config"):
        config = Config.from_mapping({"disable_auth": True, "http_host": host})
    assert config.disable_auth is True
    assert any("local" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.com"])
def test_disable_auth_elsewhere_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"disable_auth": True, "http_host": host})
    assert info.value.key == "disable_auth"


def test_disable_auth_false_is_quiet_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kryten_playlist.config"):
        Config.from_mapping({"disable_auth": False, "http_host": "0.0.0.0"})
    assert caplog.records == []


@pytest.mark.parametrize(("base", "template"), [
    ("https://media.example.com/api/v1/media/cytube",
     "https://media.example.com/api/v1/media/cytube/{video_id}.json?format=json"),
    ("https://media.example.com/api/v1/media/cytube/",
     "https://media.example.com/api/v1/media/cytube/{video_id}.json?format=json"),
    ("https://media.example.com/m/{video_id}.json", "https://media.example.com/m/{video_id}.json"),
])
def test_upstream_manifest_base_url_maps_to_template(base: str, template: str) -> None:
    config = Config.from_mapping({"mediacms_manifest_base_url": base})
    assert config.manifest_url_template == template
    assert config.unknown_keys == []


def test_manifest_template_wins_over_upstream_base_url() -> None:
    config = Config.from_mapping({"mediacms_manifest_base_url": "https://a.example.com/x",
                                  "manifest_url_template": "https://b.example.com/{video_id}"})
    assert config.manifest_url_template == "https://b.example.com/{video_id}"


def test_masked_hides_secrets() -> None:
    config = Config.from_mapping({
        "nats_url": ["nats://bob:hunter2@n1:4222", "tls://tok3n@n2:4222", "nats://n3:4222"],
        "nats_user": "bob", "nats_password": "pw1", "nats_token": "tok", "mediacms_token": "mt",
    })
    masked = config.masked()
    text = json.dumps(masked)
    for secret in ("hunter2", "tok3n", "pw1", '"tok"', '"mt"'):
        assert secret not in text
    assert masked["nats_url"] == ["nats://bob:***@n1:4222", "tls://***@n2:4222", "nats://n3:4222"]
    assert masked["nats_password"] == masked["nats_token"] == masked["mediacms_token"] == "***"
    assert masked["nats_user"] == "bob"
    assert "unknown_keys" not in masked


def test_masked_string_url_and_unset_secrets() -> None:
    masked = Config.from_mapping({"nats_url": "nats://u:p@a:4222,nats://b:4222"}).masked()
    assert masked["nats_url"] == "nats://u:***@a:4222,nats://b:4222"
    assert masked["nats_password"] is None and masked["mediacms_token"] is None
    assert masked["http_port"] == 8088


@pytest.mark.parametrize(("name", "subject"), [
    ("playlist", "playlist"), ("kryten-playlist", "kryten-playlist"), ("Kryten.Playlist", "kryten-playlist"),
])
def test_service_subject_name(name: str, subject: str) -> None:
    assert Config.from_mapping({"service_name": name}).service_subject_name == subject


def test_trusted_proxy_networks() -> None:
    config = Config.from_mapping({"trusted_proxies": ["10.0.0.1", "192.168.0.0/16"]})
    assert [str(net) for net in config.trusted_proxy_networks()] == ["10.0.0.1/32", "192.168.0.0/16"]

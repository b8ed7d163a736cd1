"""Settings: defaults, parsing, and one clear line naming the bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudseat.settings import Settings, SettingsError, ensure_secret_key


def test_defaults_are_embedded():
    s = Settings.from_env({})
    assert s.data_dir == Path("var")
    assert s.database_url == "sqlite:///var/cloudseat.db"
    assert s.redis_url is None and not s.uses_redis
    assert s.ice_servers == ()  # never aiortc's public STUN by default
    assert s.origins == frozenset({"http://127.0.0.1:8000"})


def test_environment_is_read():
    s = Settings.from_env({
        "CLOUDSEAT_DATA_DIR": "/srv/cs",
        "CLOUDSEAT_DATABASE_URL": "postgresql+psycopg://u@db/cs",
        "CLOUDSEAT_REDIS_URL": "redis://127.0.0.1:6379/1",
        "CLOUDSEAT_PUBLIC_BASE_URL": "https://seat.example.gov.cn/",
        "CLOUDSEAT_ICE_SERVERS": "stun:stun.example:3478, turn:turn.example:3478",
        "CLOUDSEAT_TURN_USERNAME": "u", "CLOUDSEAT_TURN_PASSWORD": "p",
        "CLOUDSEAT_MEDIA_ADDRESSES": "203.0.113.7",
        "CLOUDSEAT_OFFER_TIMEOUT_S": "15",
    })
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.public_base_url == "https://seat.example.gov.cn"
    assert [i.urls for i in s.ice_servers] == ["stun:stun.example:3478", "turn:turn.example:3478"]
    assert s.ice_servers[1].as_browser_dict() == {"urls": "turn:turn.example:3478", "username": "u", "credential": "p"}
    assert s.ice_servers[0].username is None
    assert s.media_addresses == ("203.0.113.7",)
    assert s.offer_timeout_s == 15.0


@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "mysql://x"),
    ("REDIS_URL", "http://x"),
    ("PUBLIC_BASE_URL", "seat.example"),
    ("ICE_SERVERS", "http://stun"),
    ("MEDIA_ADDRESSES", "not-an-ip"),
    ("OFFER_TIMEOUT_S", "soon"),
    ("OFFER_TIMEOUT_S", "0"),
    ("SESSION_MAX_AGE_S", "5"),
    ("TIMEZONE", "Mars/Olympus"),
    ("SECRET_KEY", "short"),
    ("LOG_LEVEL", "LOUD"),
    ("LOG_FORMAT", "xml"),
    ("METRICS_ALLOW", "prometheus.local"),
    ("TLS_CERTFILE", "/etc/ssl/cert.pem"),  # without its key
    ("TLS_KEYFILE", "/etc/ssl/key.pem"),  # without its certificate
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({f"CLOUDSEAT_{name}": value})
    message = str(info.value)
    assert message.startswith(f"CLOUDSEAT_{name}") or f"CLOUDSEAT_{name}" in message.split(":")[0]
    assert "\n" not in message


def test_turn_needs_credentials():
    with pytest.raises(SettingsError, match="CLOUDSEAT_TURN_USERNAME"):
        Settings.from_env({"CLOUDSEAT_ICE_SERVERS": "turn:turn.example:3478"})


def test_secret_key_is_generated_once_and_kept(tmp_path):
    s = Settings(data_dir=tmp_path)
    first = ensure_secret_key(s)
    second = ensure_secret_key(s)
    assert first.secret_key and len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    given = Settings(data_dir=tmp_path, secret_key="k" * 40)
    assert ensure_secret_key(given).secret_key == "k" * 40


def test_retention_defaults_and_environment():
    default = Settings.from_env({})
    assert (default.retention_recordings_days, default.retention_materials_days) == (180, 3650)
    s = Settings.from_env({"CLOUDSEAT_RETENTION_RECORDINGS_DAYS": " 90 ",
                           "CLOUDSEAT_RETENTION_MATERIALS_DAYS": "1825"})
    assert (s.retention_recordings_days, s.retention_materials_days) == (90, 1825)


@pytest.mark.parametrize("name", ["RETENTION_RECORDINGS_DAYS", "RETENTION_MATERIALS_DAYS"])
@pytest.mark.parametrize("value", ["0", "-7", "1.5", "half a year", "36501"])
def test_bad_retention_names_the_variable(name, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({f"CLOUDSEAT_{name}": value})
    message = str(info.value)
    assert message.startswith(f"CLOUDSEAT_{name}:") and "\n" not in message


def test_trusted_proxies_are_networks_and_a_bad_one_names_the_variable():
    from cloudseat.settings import Settings, SettingsError

    settings = Settings.from_env({"CLOUDSEAT_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/24,::1"})
    assert settings.trusted_proxies == ("10.0.0.5/32", "192.168.0.0/24", "::1/128")
    with pytest.raises(SettingsError, match="CLOUDSEAT_TRUSTED_PROXIES"):
        Settings.from_env({"CLOUDSEAT_TRUSTED_PROXIES": "nginx.local"})


def test_log_format_and_metrics_allow():
    defaults = Settings.from_env({})
    assert defaults.log_format == "text"
    assert defaults.metrics_allow == ("127.0.0.0/8", "::1/128")  # loopback only
    s = Settings.from_env({"CLOUDSEAT_LOG_FORMAT": "JSON", "CLOUDSEAT_METRICS_ALLOW": "10.1.2.3, 10.9.0.0/16"})
    assert s.log_format == "json"
    assert s.metrics_allow == ("10.1.2.3/32", "10.9.0.0/16")
    assert Settings.from_env({"CLOUDSEAT_METRICS_ALLOW": "none"}).metrics_allow == ()  # admins only


def test_turn_rest_settings_are_read():
    s = Settings.from_env({
        "CLOUDSEAT_TURN_URLS": "turn:turn.example:3478?transport=udp, turns:turn.example:5349",
        "CLOUDSEAT_TURN_SECRET": "a-long-shared-secret-0123456789",
        "CLOUDSEAT_TURN_TTL_S": "3600",
        "CLOUDSEAT_ICE_POLICY": "RELAY",
    })
    assert s.turn_urls == ("turn:turn.example:3478?transport=udp", "turns:turn.example:5349")
    assert s.turn_secret == "a-long-shared-secret-0123456789"
    assert s.turn_ttl_s == 3600 and s.ice_policy == "relay"


def test_turn_defaults_relay_nothing():
    s = Settings.from_env({})
    assert s.turn_urls == () and s.turn_secret is None
    assert s.turn_ttl_s == 86_400 and s.ice_policy == "all"


@pytest.mark.parametrize("env, variable", [
    ({"CLOUDSEAT_TURN_URLS": "stun:turn.example:3478", "CLOUDSEAT_TURN_SECRET": "x" * 20}, "CLOUDSEAT_TURN_URLS"),
    ({"CLOUDSEAT_TURN_URLS": "turn:turn.example:3478"}, "CLOUDSEAT_TURN_SECRET"),
    ({"CLOUDSEAT_TURN_SECRET": "short"}, "CLOUDSEAT_TURN_SECRET"),
    ({"CLOUDSEAT_TURN_TTL_S": "59"}, "CLOUDSEAT_TURN_TTL_S"),
    ({"CLOUDSEAT_TURN_TTL_S": "604801"}, "CLOUDSEAT_TURN_TTL_S"),
    ({"CLOUDSEAT_TURN_TTL_S": "a day"}, "CLOUDSEAT_TURN_TTL_S"),
    ({"CLOUDSEAT_ICE_POLICY": "host"}, "CLOUDSEAT_ICE_POLICY"),
    ({"CLOUDSEAT_ICE_POLICY": "relay"}, "CLOUDSEAT_ICE_POLICY"),  # relay without any TURN server
])
def test_bad_turn_settings_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value).split(":")[0] == variable


def test_relay_policy_may_use_a_static_turn_user():
    s = Settings.from_env({"CLOUDSEAT_ICE_SERVERS": "turn:turn.example:3478", "CLOUDSEAT_TURN_USERNAME": "u",
                           "CLOUDSEAT_TURN_PASSWORD": "p", "CLOUDSEAT_ICE_POLICY": "relay"})
    assert s.ice_policy == "relay" and s.ice_servers[0].username == "u"

"""TURN REST credentials: the exact bytes coturn's use-auth-secret expects."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling.turn_credentials import (
    IceConfig,
    issue_credential,
    principal_name,
    refresh_due,
    rest_credential,
    rest_username,
)


def test_credential_is_base64_hmac_sha1_of_the_username():
    # coturn's documented example shape: the password is computed, never stored
    username = rest_username("booth-3", 1_700_000_000)
    assert username == "1700000000:booth-3"
    expected = base64.b64encode(hmac.new(b"north", username.encode(), hashlib.sha1).digest()).decode()
    assert rest_credential("north", username) == expected
    assert len(base64.b64decode(expected)) == 20


def test_issue_puts_the_expiry_first():
    cred = issue_credential("s" * 20, "clerk-wang", 600, now=1000.5)
    assert cred.expires_at == 1600 and cred.username == "1600:clerk-wang"
    assert cred.credential == rest_credential("s" * 20, "1600:clerk-wang")
    with pytest.raises(ValueError):
        issue_credential("s" * 20, "clerk-wang", 0)


def test_principal_names_cannot_break_the_username():
    assert principal_name("clerk", "王:x y") == "clerk-__x_y"
    assert principal_name("booth", 3) == "booth-3"
    with pytest.raises(ValueError):
        rest_username("a:b", 1)


def test_refresh_falls_due_in_the_last_fifth():
    assert not refresh_due(10_000, 10_000, now=0)
    assert not refresh_due(10_000, 10_000, now=7_999)
    assert refresh_due(10_000, 10_000, now=8_001)
    assert refresh_due(100, 100, now=50)  # never less than a minute ahead


def test_ice_config_adds_a_fresh_credential_to_each_turn_url():
    config = IceConfig(static_servers=({"urls": "stun:stun.example:3478"},),
                       turn_urls=("turn:t.example:3478", "turns:t.example:5349"), turn_secret="k" * 20,
                       ttl_s=300, policy="relay")
    fields = config.message_fields("booth-3", now=100)
    assert fields["ice_transport_policy"] == "relay" and fields["expires_at"] == 400
    stun, turn, turns = fields["ice_servers"]
    assert stun == {"urls": "stun:stun.example:3478"}
    assert turn["username"] == turns["username"] == "400:booth-3"
    assert turn["credential"] == rest_credential("k" * 20, "400:booth-3")
    assert IceConfig().message_fields("x") == {"ice_servers": [], "ice_transport_policy": "all", "expires_at": None}
    with pytest.raises(ValueError):
        IceConfig(turn_urls=("turn:t",))
    with pytest.raises(ValueError):
        IceConfig(policy="host")

"""The plain sign-in logic: codes, fixed windows and the role table, without any server."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kryten_playlist_lib.domain.otp import (
    CODE_ALPHABET,
    code_hash,
    code_matches,
    new_code,
    new_session_id,
    normalize_code,
    pm_text,
)
from kryten_playlist_lib.domain.ratelimit import Limit, count_hit
from kryten_playlist_lib.domain.rbac import PERMISSIONS, ROLES, can, capabilities

SECRET = b"k" * 32
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def test_codes_use_the_alphabet_and_length() -> None:
    codes = {new_code(8) for _ in range(200)}
    assert all(len(code) == 8 and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len(codes) == 200
    assert not set("01IO") & set(CODE_ALPHABET)


@given(st.text(alphabet=CODE_ALPHABET, min_size=6, max_size=12))
def test_a_code_matches_whatever_its_case_and_surrounding_spaces(code: str) -> None:
    stored = code_hash(SECRET, "Alice", code)
    assert code_matches(SECRET, "alice", f"  {code.lower()} ", stored)
    assert not code_matches(SECRET, "bob", code, stored)
    assert not code_matches(b"other" * 8, "alice", code, stored)


def test_the_stored_hash_is_not_the_code() -> None:
    stored = code_hash(SECRET, "alice", "K7P2QX9M")
    assert "K7P2QX9M" not in stored and re.fullmatch(r"[0-9a-f]{64}", stored)
    assert normalize_code(" k7p2qx9m\n") == "K7P2QX9M"


def test_the_pm_names_the_service_and_expiry_and_holds_the_code_once() -> None:
    text = pm_text("playlist", "K7P2QX9M", 300)
    assert text.count("K7P2QX9M") == 1 and "playlist" in text and "5 minutes" in text


def test_session_ids_carry_at_least_128_bits() -> None:
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)


def test_a_fixed_window_counts_up_to_its_limit_then_refuses_until_it_ends() -> None:
    limit = Limit(3, 900)
    document = None
    for _ in range(3):
        decision = count_hit(document, limit, NOW)
        assert decision.allowed
        document = decision.document
    refused = count_hit(document, limit, NOW + timedelta(seconds=100))
    assert not refused.allowed and refused.retry_after_seconds == 800
    assert refused.document["count"] == 3
    reopened = count_hit(document, limit, NOW + timedelta(seconds=900))
    assert reopened.allowed and reopened.document["count"] == 1


def test_a_broken_window_document_starts_a_new_window() -> None:
    assert count_hit({"window_start": "garbage", "count": 99}, Limit(1, 60), NOW).allowed


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=3600),
       st.lists(st.integers(min_value=0, max_value=7200), max_size=80))
def test_no_window_ever_admits_more_than_its_limit(count: int, window: int, offsets: list[int]) -> None:
    limit = Limit(count, window)
    document = None
    admitted: dict[str, int] = {}
    for offset in sorted(offsets):
        decision = count_hit(document, limit, NOW + timedelta(seconds=offset))
        if decision.allowed:
            document = decision.document
            admitted[document["window_start"]] = admitted.get(document["window_start"], 0) + 1
        else:
            assert decision.retry_after_seconds >= 1
    assert all(n <= count for n in admitted.values())


def test_the_role_table_of_behaviour_md() -> None:
    assert [can(role, "playlists.view") for role in ROLES] == [True, True, True]
    assert [can(role, "playlists.edit") for role in ROLES] == [False, True, True]
    assert [can(role, "queue.hard_replace") for role in ROLES] == [False, False, True]
    assert [can(role, "queue.hard_replace", True) for role in ROLES] == [False, True, True]
    assert [can(role, "catalog.refresh") for role in ROLES] == [False, False, True]
    assert set(PERMISSIONS.values()) <= set(ROLES)


@pytest.mark.parametrize(("role", "allowed", "expected"), [
    ("viewer", False, {"edit_playlists": False, "apply": False, "hard_replace": False, "view_stats": False}),
    ("blessed", False, {"edit_playlists": True, "apply": True, "hard_replace": False, "view_stats": True}),
    ("blessed", True, {"edit_playlists": True, "apply": True, "hard_replace": True, "view_stats": True}),
    ("admin", False, {"edit_playlists": True, "apply": True, "hard_replace": True, "view_stats": True}),
])
def test_capabilities_for_auth_me(role: str, allowed: bool, expected: dict[str, bool]) -> None:
    assert capabilities(role, allowed) == expected

"""Key-segment encoding (storage.md): plain dotted words stay, anything else is =base64url."""

import re

from hypothesis import given
from hypothesis import strategies as st

from kryten_playlist_lib.bus.keys import decode_segment, encode_segment, namespace_prefix, user_segment

NATS_KEY_CHARS = re.compile(r"^[A-Za-z0-9\-_=/.]+$")


def test_plain_segments_are_kept() -> None:
    assert encode_segment("127.0.0.1") == "127.0.0.1"
    assert encode_segment("8FnmbsrWl") == "8FnmbsrWl"
    assert encode_segment("some_user-1") == "some_user-1"


def test_ipv6_loopback_is_encoded_as_in_the_contract() -> None:
    assert encode_segment("::1") == "=Ojox"
    assert decode_segment("=Ojox") == "::1"


def test_segments_that_are_not_dotted_words_are_encoded() -> None:
    for value in ["a..b", ".hidden", "trailing.", "a b", "é", "a/b", "=x", ""]:
        encoded = encode_segment(value)
        assert encoded.startswith("="), value
        assert decode_segment(encoded) == value


def test_usernames_are_one_identity_regardless_of_case() -> None:
    assert user_segment("Alice_B-1") == user_segment("alice_b-1") == "alice_b-1"


def test_namespace_prefix() -> None:
    assert namespace_prefix("default") == "ns/default/"


@given(st.text(min_size=1, max_size=80))
def test_any_text_round_trips_into_a_valid_nats_key(value: str) -> None:
    encoded = encode_segment(value)
    assert NATS_KEY_CHARS.match(encoded)
    assert "/" not in encoded
    assert decode_segment(encoded) == value


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_distinct_values_never_share_a_segment(first: str, second: str) -> None:
    if first != second:
        assert encode_segment(first) != encode_segment(second)

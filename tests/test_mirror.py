"""The state file and the offline-copy names, without a server (spec/mirror.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kryten_playlist_lib.errors import ConfigError
from kryten_playlist_lib.mirror.state_file import ForcedRow, MirrorChange, Rebase, StateFile
from kryten_playlist_lib.playlists.replay import offline_copy_name


def test_a_change_is_stored_only_when_newer_than_what_is_there(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.sqlite3", "ns1")
    state.apply_changes([MirrorChange("acl", "blessed", b'["bob"]', 7)])
    state.apply_changes([MirrorChange("acl", "blessed", b'["old"]', 5)])
    assert state.get("acl", "blessed").value == ["bob"]
    state.apply_changes([MirrorChange("acl", "blessed", None, 9)])
    assert state.get("acl", "blessed") is None
    state.apply_changes([MirrorChange("acl", "blessed", b'["late"]', 8)])
    assert state.get("acl", "blessed") is None


def test_the_journal_survives_reopening_and_namespaces_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "state.sqlite3"
    state = StateFile(path, "ns1")
    state.journal_append("update", "a" * 32, 3, {"name": "X"}, "bob", "2026-11-24T10:00:00Z",
                         [ForcedRow("playlists", "playlists/" + "a" * 32, {"name": "X"}, 3)])
    state.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reopened = StateFile(path, "ns1")
    [entry] = reopened.journal()
    assert (entry.op, entry.base_revision, entry.document, entry.username) == ("update", 3, {"name": "X"}, "bob")
    assert reopened.get("playlists", "playlists/" + "a" * 32).value == {"name": "X"}
    assert StateFile(path, "ns2").pending_count() == 0


def test_a_replayed_entry_leaves_with_its_rebase_and_the_last_one_clears_them(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.sqlite3", "ns1")
    for _ in range(2):
        state.journal_append("update", "p", 3, {"name": "X"}, "bob", "t", [])
    first, second = state.journal()
    state.journal_done(first.seq, "p", 3, Rebase("p", 4))
    assert state.rebase_of("p", 3) == Rebase("p", 4) and state.pending_count() == 1
    state.journal_done(second.seq, "p", 3, Rebase("p", 5))
    assert state.rebase_of("p", 3) is None and state.pending_count() == 0


def test_a_state_path_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="state_path"):
        StateFile(tmp_path / "file" / "state.sqlite3", "ns1")


@pytest.mark.parametrize(("name", "n", "expected"), [
    ("Friday", 1, "Friday (offline copy)"),
    ("Friday", 3, "Friday (offline copy) 3"),
    ("x" * 100, 2, "x" * 83 + " (offline copy) 2"),
])
def test_offline_copy_names_fit_a_hundred_characters(name: str, n: int, expected: str) -> None:
    assert offline_copy_name(name, n) == expected
    assert len(offline_copy_name(name, n)) <= 100

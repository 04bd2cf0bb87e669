"""The local mirror of playlists, sessions and roles, and the offline journal (spec/mirror.md)."""

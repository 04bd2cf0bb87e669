"""Named playlists in KV: validation, the store with its name index, crash repair."""

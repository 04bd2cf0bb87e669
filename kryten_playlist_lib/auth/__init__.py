"""Sign-in and roles over KV: rate limits, sessions, roles, one-time codes, IP blocks."""

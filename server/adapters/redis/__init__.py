"""Redis adapter: key layout (``keys``), Lua scripts (``scripts``, ``lua/``)
and the server-side state API (``state.RedisState``). Dialers use the same
scripts through ``dialer.leases``."""

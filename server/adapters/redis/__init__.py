"""Redis adapter of the server: its state API (``state.RedisState``) over the
key layout and Lua scripts of the ``contract`` package, which the dialers
use too."""

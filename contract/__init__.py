"""The contract between the batchcalls processes.

The server and the dialers never import each other: what they must agree on
lives here. The Redis layout (``keys``), the Lua scripts that change it
atomically (``scripts``, ``lua/``), the typed lease record both sides read
(``lease``), the trunk settings a lease carries (``trunk``), the one
phone-masking rule for logs (``masking``) and the one rule for opening a
gRPC channel, plaintext or TLS (``channels``). See docs/design.md.
"""

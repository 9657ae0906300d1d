"""Business logic. Services take a session and clients, never commit; callers own the unit of work."""

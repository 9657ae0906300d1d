"""Reading tokens and contracts: their jobs' work, and politeness toward metadata hosts."""

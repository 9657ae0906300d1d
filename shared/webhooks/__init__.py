"""Webhooks: the change log pushed to subscribers' endpoints (docs/webhooks.md)."""

"""Celery tasks: thin wrappers that decode ids and call a service."""

from workers.tasks import chain, changes, images, jobs, webhooks

__all__ = ["chain", "changes", "images", "jobs", "webhooks"]

"""Celery tasks: thin wrappers that decode ids and call a service."""

from workers.tasks import chain, images, jobs

__all__ = ["chain", "images", "jobs"]

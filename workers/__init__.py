"""Celery workers and beat: `celery -A workers worker` / `celery -A workers beat`.

This is an entry module: importing it reads the settings and builds the Celery app.
"""

from shared.config import load_settings
from workers.celery_app import create_celery_app

app = create_celery_app(load_settings())

import workers.signals  # noqa: E402 - connects the lifecycle hooks
import workers.tasks  # noqa: E402, F401 - registers the tasks on `app`

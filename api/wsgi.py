"""The WSGI entry point, `api.wsgi:app`, that `python -m api.serve` runs."""

from api.app import create_app

app = create_app()

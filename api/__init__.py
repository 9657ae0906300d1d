"""The REST API. `api.app.create_app` builds the Flask app, `api.wsgi` is the WSGI entry point
and `python -m api.serve` runs it (the Procfile's `api` process).

Importing this package imports nothing else: `api.serve` must set up the Prometheus
multiprocess directory before any module imports prometheus_client.
"""

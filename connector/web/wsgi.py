"""Gunicorn entry point: `gunicorn connector.web.wsgi:app` (settings from the environment)."""

from connector.web.app import create_app

app = create_app()

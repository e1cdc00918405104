"""Gunicorn entry point: `gunicorn connector.wsgi:app` (settings from the environment)."""

from connector.app import create_app

app = create_app()

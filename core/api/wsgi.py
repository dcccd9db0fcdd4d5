"""The WSGI entry point for production servers: ``gunicorn core.api.wsgi:app``."""

from core.api import create_app

app = create_app()

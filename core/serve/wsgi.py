"""The WSGI entry point for production servers (``python -m core.serve``)."""

from core.api import create_app
from core.config import Settings
from core.log import configure
from core.serve import lifeline, listener

_settings = Settings.from_env()
# Each granian worker imports this module: from now on it stops after its server.
lifeline.follow_server(_settings.api.port)
configure(_settings.log)
app = create_app(_settings)
if _settings.api.server == "granian":
    # A worker about to be replaced closes each connection after its answer
    # (core/serve/listener.py); gunicorn's workers keep SIGUSR1 for reopening logs.
    listener.drain_on_signal()
    app = listener.closing_when_draining(app)

"""gunicorn settings for the API, taken from the same CLICKSTREAM_* settings as everything else."""

from core.config import Settings
from core.log import logconfig_dict as _logconfig_dict
from core.serve import multiprocess

# Before the application (and so prometheus_client) is imported by preload_app.
multiprocess.enable()
_settings = Settings.from_env()
logconfig_dict = _logconfig_dict(_settings.log)

bind = [f"{_settings.api.host}:{_settings.api.port}"]
if _settings.ops.port:
    # Operational endpoints answer only on this listener (core/api/ops.py).
    bind.append(f"{_settings.ops.host}:{_settings.ops.port}")
workers = _settings.api.workers
threads = _settings.api.threads
worker_class = "gthread"
# The Kafka producer is created lazily in each worker, so preloading the app is safe.
preload_app = True
keepalive = 30
timeout = 30
graceful_timeout = 20
accesslog = None
errorlog = "-"


def child_exit(server, worker) -> None:
    multiprocess.worker_exited(worker.pid)


def on_exit(server) -> None:
    multiprocess.server_exited()

"""The production server: granian serving the WSGI app, sized by the CLICKSTREAM_* settings.

``python -m core.api.serve``. Each worker imports ``core.api.wsgi`` and creates its Kafka
producer on first use, so no producer crosses a fork.
"""

from granian import Granian
from granian.constants import Interfaces

from core.config import Settings


def main() -> None:
    settings = Settings.from_env()
    Granian(
        "core.api.wsgi:app",
        address=settings.api_host,
        port=settings.api_port,
        interface=Interfaces.WSGI,
        workers=settings.api_workers,
        blocking_threads=settings.api_threads,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()

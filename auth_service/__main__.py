"""``python -m auth_service --host 127.0.0.1 --port 8001 [--delay S]``: run the reference auth
service (``--delay``: every verify answer waits S seconds, a slow service)."""

from __future__ import annotations

import argparse

from auth_service.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m auth_service",
        description="Reference auth service for development and tests (never for production). "
        "The HS256 key comes from CLICKSTREAM_JWT_SECRET.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="seconds every verify answer waits, a slow service (POST /_test/faults changes it)",
    )
    args = parser.parse_args(argv)
    create_app(delay_s=args.delay).run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()

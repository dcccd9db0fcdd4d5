"""The reference auth service: issues and verifies HS256 JWTs, for development and tests only.

It shows the contract clickstream expects from the real auth service (``docs/auth-service.md``).
Login issues a token for any user id and ``/_test/faults`` lets tests slow it down or break it:
never expose it beyond a developer's machine.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from flask import Blueprint, Flask, current_app, jsonify, request

from core.config import Settings, env_name

ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600
# Negative lifetimes are allowed so tests can mint already-expired tokens.
MAX_TTL_S = 30 * 24 * 3600

bp = Blueprint("auth", __name__)


@dataclass
class State:
    """What the service remembers, in memory: its key, revoked token ids, injected faults."""

    secret: str
    revoked: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    status: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_app(secret: str | None = None, delay_s: float = 0.0) -> Flask:
    """The service; ``secret`` defaults to ``CLICKSTREAM_JWT_SECRET``, then Settings' default.
    ``delay_s``: every verify answer waits that long from the start (``/_test/faults``
    changes it)."""
    if secret is None:
        secret = os.environ.get(env_name("jwt_secret"), Settings().jwt.secret)
    app = Flask(__name__)
    app.extensions["auth_service"] = State(secret=secret, delay_s=delay_s)
    app.register_blueprint(bp)
    return app


def _state() -> State:
    return current_app.extensions["auth_service"]


def _error(message: str, status: int):
    return jsonify({"error": message}), status


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _decode(token: str, verify_exp: bool = True) -> dict[str, Any]:
    return jwt.decode(
        token,
        _state().secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp", "iat", "jti"], "verify_exp": verify_exp},
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.post("/api/v1/auth/login")
def login():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("body must be a JSON object", 400)
    user_id = body.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id.strip():
        return _error("user_id must be a non-empty string", 400)
    ttl_s = body.get("ttl_s", DEFAULT_TTL_S)
    if not _number(ttl_s) or abs(ttl_s) > MAX_TTL_S:
        return _error(f"ttl_s must be a number of seconds within +-{MAX_TTL_S}", 400)
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + int(ttl_s), "jti": uuid.uuid4().hex}
    return jsonify({"token": jwt.encode(claims, _state().secret, algorithm=ALGORITHM)})


@bp.route("/api/v1/auth/verify", methods=["GET", "POST"])
def verify():
    state = _state()
    with state.lock:
        delay_s, status = state.delay_s, state.status
    if delay_s:
        time.sleep(delay_s)
    if status is not None:
        return _error("injected fault", status)
    token = _bearer()
    if token is None:
        return _error("missing bearer token", 401)
    try:
        claims = _decode(token)
    except jwt.ExpiredSignatureError:
        return _error("token expired", 401)
    except jwt.PyJWTError:
        return _error("invalid token", 401)
    with state.lock:
        revoked = claims["jti"] in state.revoked
    if revoked:
        return _error("token revoked", 401)
    return jsonify({"user_id": claims["sub"], "exp": claims["exp"]})


@bp.post("/api/v1/auth/revoke")
def revoke():
    token = _bearer()
    if token is None:
        return _error("missing bearer token", 401)
    try:
        claims = _decode(token, verify_exp=False)
    except jwt.PyJWTError:
        return _error("invalid token", 401)
    state = _state()
    with state.lock:
        state.revoked.add(claims["jti"])
    return jsonify({"revoked": True})


@bp.post("/_test/faults")
def faults():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("body must be a JSON object", 400)
    delay_s = body.get("delay_s", 0.0)
    status = body.get("status")
    if not _number(delay_s) or not 0 <= delay_s <= 60:
        return _error("delay_s must be a number of seconds from 0 to 60", 400)
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        return _error("status must be null or an HTTP status code", 400)
    state = _state()
    with state.lock:
        state.delay_s, state.status = float(delay_s), status
    return jsonify({"delay_s": float(delay_s), "status": status})

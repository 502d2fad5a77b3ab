"""Database connections that work the same in Lambda and on a laptop.

Where the connection goes, in order:

1. ``DATABASE_URL`` when set (``mysql+pymysql://user:pw@127.0.0.1:3306/app``,
   ``sqlite:///path.db``): local development against any database.
2. In the cloud, the variables ``Database.grant_connect(function)`` sets
   (``PYLIVE_DB_HOST``, ``PYLIVE_DB_PORT``, ``PYLIVE_DB_NAME``, ``PYLIVE_DB_USER``,
   ``PYLIVE_DB_REGION``): the RDS Proxy, with a fresh IAM auth token as the password and
   verified TLS.
3. Otherwise an embedded SQLite file, ``.pylive/local.db`` under the function's code root, so
   ``pylive dev --local`` needs no database server at all.

Connections and engines are created once per process and reused across warm invocations.
IAM tokens live 15 minutes; a cached token is replaced after ``TOKEN_REUSE_SECONDS``, well
before it expires, and only new connections need one.

    from pylive import db

    with db.engine().begin() as conn:
        conn.execute(sqlalchemy.text("SELECT 1"))

    conn = db.connect()  # a plain DB-API connection (PyMySQL or sqlite3)
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

TOKEN_REUSE_SECONDS = 10 * 60  # tokens are valid for 15 minutes
DEFAULT_PORT = 3306
LOCAL_DB = Path(".pylive") / "local.db"


class DatabaseConfigError(RuntimeError):
    """The environment does not say where the database is."""


@dataclass(frozen=True)
class ProxyTarget:
    """An RDS Proxy reached with IAM authentication."""

    host: str
    port: int
    database: str
    user: str
    region: str


def proxy_target(env: Mapping[str, str] | None = None) -> ProxyTarget | None:
    env = os.environ if env is None else env
    host = env.get("PYLIVE_DB_HOST")
    if not host:
        return None
    missing = [k for k in ("PYLIVE_DB_NAME", "PYLIVE_DB_USER") if not env.get(k)]
    if missing:
        raise DatabaseConfigError(
            f"PYLIVE_DB_HOST is set but {', '.join(missing)} is not; "
            "use Database.grant_connect(function) to set them all"
        )
    region = env.get("PYLIVE_DB_REGION") or env.get("AWS_REGION") or ""
    if not region:
        raise DatabaseConfigError("set PYLIVE_DB_REGION (or AWS_REGION) for IAM database auth")
    return ProxyTarget(
        host=host,
        port=int(env.get("PYLIVE_DB_PORT") or DEFAULT_PORT),
        database=env["PYLIVE_DB_NAME"],
        user=env["PYLIVE_DB_USER"],
        region=region,
    )


def database_url(env: Mapping[str, str] | None = None) -> str:
    """The SQLAlchemy URL the connection goes to (without a password for the proxy)."""
    env = os.environ if env is None else env
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    target = proxy_target(env)
    if target is not None:
        user = quote(target.user, safe="")
        return f"mysql+pymysql://{user}@{target.host}:{target.port}/{target.database}"
    if env.get("AWS_LAMBDA_RUNTIME_API"):
        # Inside Lambda, a local file would be lost with the sandbox: say what is missing.
        raise DatabaseConfigError(
            "no database configured: call Database.grant_connect(function) in the stacks "
            "module, or set DATABASE_URL"
        )
    root = Path(env.get("LAMBDA_TASK_ROOT") or os.getcwd())
    path = root / LOCAL_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class TokenCache:
    """IAM auth tokens for one proxy target, renewed well before they expire."""

    def __init__(
        self,
        target: ProxyTarget,
        *,
        generate: Callable[[ProxyTarget], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._generate = generate or _generate_token
        self._clock = clock
        self._token = ""
        self._issued = 0.0
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if not self._token or now - self._issued >= TOKEN_REUSE_SECONDS:
                self._token = self._generate(self._target)
                self._issued = now
            return self._token


def _generate_token(target: ProxyTarget) -> str:
    import boto3

    client = boto3.client("rds", region_name=target.region)
    token: str = client.generate_db_auth_token(
        DBHostname=target.host, Port=target.port, DBUsername=target.user, Region=target.region
    )
    return token


def tls_context() -> ssl.SSLContext:
    """Verified TLS: the proxy's certificate must chain to a trusted root and match its name."""
    context = ssl.create_default_context()
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Connections:
    """The process-wide engine, DB-API connection and token cache (one per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: Any = None
        self.engine_url = ""
        self.connection: Any = None
        self.connection_url = ""
        self.tokens: TokenCache | None = None

    def token_cache(self, target: ProxyTarget) -> TokenCache:
        if self.tokens is None or self.tokens._target != target:
            self.tokens = TokenCache(target)
        return self.tokens


_state = _Connections()


def engine(**kwargs: Any) -> Any:
    """A SQLAlchemy engine for this environment, created once and reused.

    Against the proxy every new pooled connection gets a current IAM token and TLS.
    Connections are checked before use (``pool_pre_ping``), so a connection the server
    dropped is replaced instead of failing the invocation."""
    import sqlalchemy

    url = database_url()
    with _state.lock:
        if _state.engine is not None and _state.engine_url == url and not kwargs:
            return _state.engine
        options: dict[str, Any] = {"pool_pre_ping": True, **kwargs}
        target = proxy_target() if not os.environ.get("DATABASE_URL") else None
        if target is not None:
            options.setdefault("pool_recycle", TOKEN_REUSE_SECONDS)
            options.setdefault("connect_args", {})["ssl"] = tls_context()
        created = sqlalchemy.create_engine(url, **options)
        if target is not None:
            tokens = _state.token_cache(target)

            @sqlalchemy.event.listens_for(created, "do_connect")
            def _iam_password(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
                cparams["password"] = tokens.get()

        if not kwargs:
            _state.engine, _state.engine_url = created, url
        return created


def connect() -> Any:
    """A DB-API connection (PyMySQL for MySQL, sqlite3 for SQLite), reused across warm
    invocations and reopened when the server has dropped it."""
    url = database_url()
    with _state.lock:
        current = _state.connection
        if current is not None and _state.connection_url == url and _alive(current):
            return current
        if current is not None:
            _close_quietly(current)
        _state.connection = _open(url)
        _state.connection_url = url
        return _state.connection


def _alive(connection: Any) -> bool:
    try:
        if hasattr(connection, "ping"):
            connection.ping(reconnect=False)
        else:
            connection.execute("SELECT 1")
        return True
    except Exception:
        return False


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


def _open(url: str) -> Any:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        return sqlite3.connect(parsed.database or ":memory:", check_same_thread=False)
    if parsed.get_backend_name() != "mysql":
        raise DatabaseConfigError(
            f"pylive.db.connect() speaks MySQL and SQLite; use pylive.db.engine() for {url}"
        )
    import pymysql

    options: dict[str, Any] = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or DEFAULT_PORT,
        "user": parsed.username or "",
        "database": parsed.database,
        "autocommit": False,
        "connect_timeout": 10,
    }
    target = proxy_target() if not os.environ.get("DATABASE_URL") else None
    if target is not None:
        options["password"] = _state.token_cache(target).get()
        options["ssl"] = tls_context()
    else:
        options["password"] = parsed.password or ""
    return pymysql.connect(**options)


def reset() -> None:
    """Forget the cached engine and connection (tests, or after changing the environment)."""
    with _state.lock:
        if _state.connection is not None:
            _close_quietly(_state.connection)
        if _state.engine is not None:
            _state.engine.dispose()
        _state.__init__()  # type: ignore[misc]

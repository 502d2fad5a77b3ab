"""pylive.db against the running MariaDB (the stand-in for Aurora MySQL) and SQLite."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import sqlalchemy
from sqlalchemy import text

from pylive.in_lambda import db

MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "DATABASE_URL",
        "PYLIVE_DB_HOST",
        "PYLIVE_DB_PORT",
        "PYLIVE_DB_NAME",
        "PYLIVE_DB_USER",
        "PYLIVE_DB_REGION",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    db.reset()
    yield
    db.reset()


@pytest.fixture
def mariadb(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", MARIADB_URL)
    table = f"items_{uuid.uuid4().hex[:8]}"
    with db.engine().begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(50))"))
    yield table
    db.reset()
    with sqlalchemy.create_engine(MARIADB_URL).begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def test_where_connections_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    assert db.database_url() == f"sqlite:///{tmp_path / '.pylive' / 'local.db'}"
    proxy = {
        "PYLIVE_DB_HOST": "app.proxy-abc.us-east-1.rds.amazonaws.com",
        "PYLIVE_DB_NAME": "app",
        "PYLIVE_DB_USER": "app",
        "PYLIVE_DB_REGION": "us-east-1",
    }
    assert db.database_url(proxy) == (
        "mysql+pymysql://app@app.proxy-abc.us-east-1.rds.amazonaws.com:3306/app"
    )
    assert db.database_url({**proxy, "DATABASE_URL": MARIADB_URL}) == MARIADB_URL
    with pytest.raises(db.DatabaseConfigError, match="grant_connect"):
        db.database_url({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    with pytest.raises(db.DatabaseConfigError, match="PYLIVE_DB_USER"):
        db.database_url({"PYLIVE_DB_HOST": "h", "PYLIVE_DB_NAME": "app"})


def test_embedded_sqlite_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    with db.engine().begin() as conn:
        conn.execute(text("CREATE TABLE t (name TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:name)"), {"name": "pen"})
    assert db.engine() is db.engine()  # reused across invocations
    rows = db.connect().execute("SELECT name FROM t").fetchall()
    assert rows == [("pen",)]
    assert (tmp_path / ".pylive" / "local.db").exists()


def test_queries_and_transactions_on_mariadb(mariadb: str) -> None:
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {mariadb} VALUES (1, 'pen')"))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {mariadb} VALUES (2, 'ink')"))
        raise RuntimeError("roll back")
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, name FROM {mariadb} ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "pen")]

    connection = db.connect()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {mariadb} VALUES (%s, %s)", (3, "cup"))
    connection.rollback()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {mariadb}")
        assert cursor.fetchone() == (1,)
    assert db.connect() is connection  # reused while alive


def _kill(connection_id: int) -> None:
    admin = pymysql.connect(host="127.0.0.1", user="root", database="test")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(connection_id)}")
    finally:
        admin.close()


def test_recovers_after_the_server_drops_the_connection(mariadb: str) -> None:
    connection = db.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (dropped,) = cursor.fetchone()
    _kill(dropped)
    fresh = db.connect()
    assert fresh is not connection
    with fresh.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {mariadb}")
        assert cursor.fetchone() == (0,)

    engine = db.engine()
    with engine.connect() as conn:
        pooled = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
    _kill(pooled)
    with engine.connect() as conn:  # the pre-ping notices and reconnects
        assert conn.execute(text("SELECT CONNECTION_ID()")).scalar_one() != pooled


def test_iam_tokens_are_renewed_before_they_expire() -> None:
    target = db.ProxyTarget("proxy.example", 3306, "app", "app", "us-east-1")
    issued: list[str] = []
    now = [0.0]

    def generate(_: db.ProxyTarget) -> str:
        issued.append(f"token-{len(issued)}")
        return issued[-1]

    tokens = db.TokenCache(target, generate=generate, clock=lambda: now[0])
    assert tokens.get() == "token-0"
    now[0] = db.TOKEN_REUSE_SECONDS - 1
    assert tokens.get() == "token-0"
    now[0] = db.TOKEN_REUSE_SECONDS
    assert tokens.get() == "token-1"
    assert db.TOKEN_REUSE_SECONDS < 15 * 60


def test_a_real_iam_token_is_a_signed_connect_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    target = db.ProxyTarget("proxy.example", 3306, "app", "app", "eu-west-1")
    token = db.TokenCache(target).get()
    assert token.startswith("proxy.example:3306/?Action=connect&DBUser=app")
    assert "X-Amz-Signature=" in token and "eu-west-1%2Frds-db%2Faws4_request" in token


def test_proxy_engines_use_verified_tls_and_a_token_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "PYLIVE_DB_HOST": "proxy.example",
        "PYLIVE_DB_NAME": "app",
        "PYLIVE_DB_USER": "app",
        "PYLIVE_DB_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }.items():
        monkeypatch.setenv(name, value)
    engine = db.engine()
    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    @sqlalchemy.event.listens_for(engine, "do_connect")
    def capture(dialect: object, record: object, cargs: object, cparams: dict[str, object]) -> None:
        seen.update(cparams)
        raise Stop  # the parameters are what matter; there is no proxy to reach here

    with pytest.raises(Exception):  # noqa: B017 - Stop, however SQLAlchemy wraps it
        engine.connect()
    context = seen["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert str(seen["password"]).startswith("proxy.example:3306/?Action=connect")

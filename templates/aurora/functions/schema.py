"""The schema step. Locally it creates the table in the local database; in AWS it also
creates the MySQL user the functions connect as, with the password the RDS Proxy holds for it
in Secrets Manager."""

import json
import os

import sqlalchemy
from sqlalchemy import text

from pylive import db

metadata = sqlalchemy.MetaData()
items = sqlalchemy.Table(
    "items",
    metadata,
    sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True, autoincrement=True),
    sqlalchemy.Column("name", sqlalchemy.String(200), nullable=False),
    sqlalchemy.Column("created_at", sqlalchemy.DateTime, server_default=sqlalchemy.func.now()),
)

_ready = False


def ensure_local_schema() -> None:
    """Create the table on first use when running locally (no proxy configured)."""
    global _ready
    if not _ready and not os.environ.get("PYLIVE_DB_HOST"):
        metadata.create_all(db.engine())
    _ready = True


def migrate(event, context):
    engine = db.engine()
    secret_arn = os.environ.get("APP_USER_SECRET_ARN")
    with engine.begin() as conn:
        if secret_arn:
            password = _app_password(secret_arn)
            conn.execute(text("CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY :pw"), {"pw": password})
            conn.execute(text("ALTER USER 'app'@'%' IDENTIFIED BY :pw"), {"pw": password})
            database = os.environ["PYLIVE_DB_NAME"]
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO 'app'@'%'"))
    metadata.create_all(engine)
    return {"migrated": True, "tables": sorted(metadata.tables)}


def _app_password(secret_arn):
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    return json.loads(secret["SecretString"])["password"]

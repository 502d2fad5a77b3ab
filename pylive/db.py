"""The app's database connection, as functions import it: ``from pylive import db``.

The code lives in :mod:`pylive.in_lambda.db`, which ships in every bundle whose code imports
pylive; see docs/database.md.
"""

from pylive.in_lambda.db import (
    DatabaseConfigError,
    ProxyTarget,
    TokenCache,
    connect,
    database_url,
    engine,
    proxy_target,
    reset,
    tls_context,
)

__all__ = [
    "DatabaseConfigError",
    "ProxyTarget",
    "TokenCache",
    "connect",
    "database_url",
    "engine",
    "proxy_target",
    "reset",
    "tls_context",
]

"""A real PostgreSQL for the tests: a fresh database per test run on the server at
``FRETCOACH_TEST_DATABASE_URL`` (default: the local server's ``test`` database)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("FRETCOACH_TEST_DATABASE_URL", DEFAULT_URL)


def require_server(url: str) -> None:
    """Skip when no server answers — except under CI, where that is a failure."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at {url}: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def with_dbname(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)


def create_database(url: str) -> str:
    name = f"fretcoach_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_roles(url: str, roles: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def truncate(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE fretcoach.sessions, fretcoach.ai_practice_plans, fretcoach.devices")

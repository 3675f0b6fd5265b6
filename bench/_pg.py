"""The sync benchmark's own PostgreSQL database and device roles: made fresh, always dropped.

Device roles are cluster-wide (not per database), so dropping the database alone would leave
them behind; every role the benchmark may create is registered *before* it is created and
dropped with the database, even after a failure half-way through.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from types import TracebackType

import psycopg
from psycopg import sql

__all__ = ["DEFAULT_URL", "BenchDatabase", "server_url", "with_dbname"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The administrative URL (a role that may create databases and roles)."""
    return os.environ.get("FRETCOACH_TEST_DATABASE_URL", DEFAULT_URL)


def with_dbname(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


class BenchDatabase:
    """``with BenchDatabase(url) as db:`` creates ``fretcoach_bench_<hex>``; leaving drops it
    (``WITH (FORCE)``: connections still open, e.g. from interrupted pedals, are ended) and
    every role passed to :meth:`track_role`."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"fretcoach_bench_{uuid.uuid4().hex[:10]}"
        self.url = with_dbname(admin_url, self.name)
        self.roles: list[str] = []
        self.created = False

    def __enter__(self) -> BenchDatabase:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for problem in self.drop():
            print(f"cleanup: could not drop {problem}", file=sys.stderr)

    def track_role(self, role: str) -> None:
        if role not in self.roles:
            self.roles.append(role)

    def drop(self, patience_s: float = 30.0) -> list[str]:
        """Drop the database, then the roles; returns what could not be dropped (never raises).

        A server that is restarting (another engineer's fault test, say) refuses connections
        for a few seconds: keep trying for ``patience_s`` rather than leave 200 roles behind."""
        deadline = time.monotonic() + patience_s
        while True:
            problems = self._drop_once()
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(1.0)

    def _drop_once(self) -> list[str]:
        problems: list[str] = []
        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                if self.created:
                    try:
                        conn.execute(
                            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
                        )
                        self.created = False
                    except psycopg.Error as exc:
                        problems.append(f"database {self.name}: {_first_line(exc)}")
                # Roles after the database: its objects (grants, policies) no longer refer to them.
                for role in list(self.roles):
                    try:
                        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
                        self.roles.remove(role)
                    except psycopg.Error as exc:
                        problems.append(f"role {role}: {_first_line(exc)}")
        except psycopg.Error as exc:
            problems.append(f"{self.name} and {len(self.roles)} roles (cannot connect: {_first_line(exc)})")
        return problems


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]

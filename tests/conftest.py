"""Fixtures shared by the whole suite: real SQLite files, a real PostgreSQL database, gpiozero's mock pins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from pg import admin_url, create_database, drop_database, drop_roles, require_server, truncate, with_dbname

from cloud_sync import DeviceCredentials, create_device, migrate
from device.session import SessionStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    """A fresh SQLite session store in its own file."""
    s = SessionStore.open(tmp_path / "fretcoach.db")
    yield s
    s.close()


@dataclass
class Cloud:
    """The test run's migrated ``fretcoach`` database, emptied before each test."""

    url: str
    roles: list[str] = field(default_factory=list)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def device(self, user_id: str, device_id: str | None = None) -> DeviceCredentials:
        device_id = device_id or f"pedal-{uuid.uuid4().hex[:8]}"
        with self.connect() as conn:
            creds = create_device(conn, device_id, user_id)
        self.roles.append(creds.role)
        return creds

    def device_url(self, creds: DeviceCredentials) -> str:
        return creds.url(self.url)

    def scalar(self, query: str, params: list[Any] | None = None) -> Any:
        with self.connect() as conn:
            row = conn.execute(query.encode(), params).fetchone()
        return None if row is None else row[0]


@pytest.fixture(scope="session")
def cloud_database() -> Iterator[Cloud]:
    base = admin_url()
    require_server(base)
    name = create_database(base)
    cloud = Cloud(with_dbname(base, name))
    with cloud.connect() as conn:
        migrate(conn)
    try:
        yield cloud
    finally:
        drop_database(base, name)
        drop_roles(base, cloud.roles)


@pytest.fixture
def cloud(cloud_database: Cloud) -> Cloud:
    with cloud_database.connect() as conn:
        truncate(conn)
    return cloud_database


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """A fresh MockFactory as gpiozero's default for one test (gpiozero's own fixture pattern).

    Installed here, never at import time, and torn down after the test so no pin or
    reservation leaks into the next one.
    """
    saved = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        # MockFactory keeps some state at class level; reset() clears it.
        factory.reset()
        Device.pin_factory = saved

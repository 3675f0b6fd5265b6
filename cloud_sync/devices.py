"""Per-device credentials: one login role per pedal, bound to its player's rows.

A device role belongs to the ``fretcoach_device`` group, which holds the grants; the rows it
may read and write are those of the user recorded for it in ``fretcoach.devices`` (enforced
by row-level security, see cloud_sync.schema). A stolen pedal's password opens one player's
practice history, nobody else's, and cannot delete anything.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from cloud_sync.schema import DEVICE_GROUP_ROLE, schema_version
from device.errors import ConfigError, SyncError

__all__ = ["DeviceCredentials", "create_device", "device_role_name", "drop_device"]

_ROLE_PREFIX = "fretcoach_dev_"


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    device_id: str
    user_id: str
    role: str
    password: str

    def url(self, admin_url: str) -> str:
        """The admin URL's host, port and database with this device's role and password."""
        info = psycopg.conninfo.conninfo_to_dict(admin_url)
        info.pop("password", None)
        info["user"] = self.role
        info["password"] = self.password
        return _as_url(info)


def device_role_name(device_id: str) -> str:
    """A PostgreSQL role name for ``device_id`` (lower-case letters, digits, underscores)."""
    slug = re.sub(r"[^a-z0-9_]+", "_", device_id.lower()).strip("_")
    if not slug:
        raise ConfigError(f"device id {device_id!r} has no letters or digits")
    return (_ROLE_PREFIX + slug)[:63]


def create_device(
    conn: psycopg.Connection[Any], device_id: str, user_id: str, password: str | None = None
) -> DeviceCredentials:
    """Create (or re-key) the device's role and bind it to ``user_id``. Needs CREATEROLE."""
    if schema_version(conn) == 0:
        raise SyncError("the fretcoach schema is missing: run `fretcoach db migrate` first")
    if not user_id.strip():
        raise ConfigError("a device needs a user id")
    role = device_role_name(device_id)
    password = password or secrets.token_urlsafe(24)
    with conn.transaction():
        owner = conn.execute(
            "SELECT device_id FROM fretcoach.devices WHERE role_name = %s AND device_id <> %s", [role, device_id]
        ).fetchone()
        if owner:
            raise ConfigError(f"device ids {device_id!r} and {owner[0]!r} map to the same role {role}")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            # INHERIT: the role uses the group's grants without SET ROLE.
            sql.SQL(verb + " ROLE {} WITH LOGIN INHERIT PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(DEVICE_GROUP_ROLE), sql.Identifier(role)))
        conn.execute(
            "INSERT INTO fretcoach.devices (device_id, user_id, role_name) VALUES (%s, %s, %s)"
            " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, role_name = excluded.role_name",
            [device_id, user_id, role],
        )
    return DeviceCredentials(device_id, user_id, role, password)


def drop_device(conn: psycopg.Connection[Any], device_id: str) -> bool:
    """Remove the device's role and binding (its sessions stay). True if it existed."""
    role = device_role_name(device_id)
    with conn.transaction():
        gone = conn.execute("DELETE FROM fretcoach.devices WHERE device_id = %s RETURNING 1", [device_id]).fetchone()
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if exists:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    return bool(gone or exists)


def _as_url(info: dict[str, Any]) -> str:
    user = quote(str(info.pop("user")), safe="")
    password = quote(str(info.pop("password")), safe="")
    host = info.pop("host", "localhost")
    port = info.pop("port", "5432")
    dbname = quote(str(info.pop("dbname", "")), safe="")
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(info.items()))
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}" + (f"?{query}" if query else "")

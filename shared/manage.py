"""Operator commands: `python -m shared.manage ensure-database | local-admin-token FILE |
servers start|stop RUN_DIR`."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import load_settings, normalize_database_url
from shared.embedded.choice import ServerNotAnswering
from shared.embedded.servers import provide, stop_embedded
from shared.local_admin_token import ensure_local_admin_token


def ensure_database(url: str) -> bool:
    """Create the database named by `url` if it does not exist; True if it was created."""
    target = make_url(normalize_database_url(url))
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        admin.dispose()


def start_servers(run_dir: Path) -> int:
    """`make run`'s servers (docs/embedded-servers.md): one line each on standard error, and
    on standard output the `export` lines that point the Procfile processes at them."""
    try:
        servers = provide(os.environ, run_dir, say=lambda line: print(line, file=sys.stderr))
    except ServerNotAnswering as exc:
        print(exc, file=sys.stderr)
        return 1
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"could not start an embedded server: {exc} {detail}".rstrip(), file=sys.stderr)
        return 1
    for name, value in (
        ("DATABASE_URL", servers.database_url),
        ("DATABASE_SERVER_URL", servers.database_server_url()),
        ("REDIS_URL", servers.redis_url),
    ):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def stop_servers(run_dir: Path) -> int:
    for name in stop_embedded(run_dir):
        print(f"{name}: stopped the embedded server", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.manage")
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure-database", help="create DATABASE_URL's database if missing")
    ensure.add_argument("--url", help="database URL (default: DATABASE_URL)")
    local_token = sub.add_parser(
        "local-admin-token", help="print the admin token kept in FILE, made first if missing"
    )
    local_token.add_argument("file", type=Path, help="e.g. .run/admin-token (made mode 0600)")
    servers = sub.add_parser(
        "servers",
        help="start: use the configured or default PostgreSQL and Redis, else start embedded "
        "ones with their data in RUN_DIR (prints `export` lines); stop: stop those",
    )
    servers.add_argument("action", choices=("start", "stop"))
    servers.add_argument("run_dir", type=Path, help="e.g. .run")
    args = parser.parse_args(argv)
    if args.command == "servers":
        return start_servers(args.run_dir) if args.action == "start" else stop_servers(args.run_dir)
    if args.command == "local-admin-token":
        print(ensure_local_admin_token(args.file))
    if args.command == "ensure-database":
        url = args.url or load_settings().database_url
        created = ensure_database(url)
        print(
            f"database {make_url(normalize_database_url(url)).database}: "
            f"{'created' if created else 'exists'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

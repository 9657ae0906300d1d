"""Leases on running jobs: short, renewed by a heartbeat while the work runs.

A claimed job carries `locked_until`; each worker process renews the leases of the jobs it
is running, so a job whose worker died (kill -9, lost machine) is free again within one
lease, while a slow but live job is never handed to a second worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.jobs.table import TOKEN_JOBS

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)


class LeaseKeeper:
    """Renews the leases of this process's running jobs every `lease / 3`."""

    def __init__(self, sessions: sessionmaker[Session], lease: timedelta = LEASE) -> None:
        self.sessions = sessions
        self.lease = lease
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextmanager
    def holding(self, *job_ids: int) -> Iterator[None]:
        """Keep the leases of `job_ids` alive while the block runs."""
        with self._lock:
            self._running.update(job_ids)
            self._start()
        try:
            yield
        finally:
            with self._lock:
                self._running.difference_update(job_ids)

    def renew(self) -> int:
        with self._lock:
            ids = list(self._running)
        if not ids:
            return 0
        with session_scope(self.sessions) as session:
            return TOKEN_JOBS.renew(session, ids, self.lease)

    def stop(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._beat, name="lease-keeper", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception:  # Postgres away: the next beat tries again
                log.warning("could not renew job leases", exc_info=True)

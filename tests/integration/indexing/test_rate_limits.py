"""Rate-limited hosts: skipped while their Retry-After runs, forgotten after.

See docs/token-processing.md#rate-limits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from shared.db import session_scope
from shared.errors import RetryableJobError
from shared.indexing.rate_limits import RateLimitedHosts
from shared.models import RateLimitedHost


def limit(sessions: sessionmaker[Session], host: str, seconds: float) -> None:
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    with session_scope(sessions) as s:
        s.execute(insert(RateLimitedHost).values(hostname=host, retry_after=until))


def test_a_host_is_skipped_until_its_retry_after(sessions) -> None:
    limit(sessions, "m.example", 120)
    with pytest.raises(RetryableJobError, match=r"rate-limited hostname m\.example") as caught:
        RateLimitedHosts(sessions).check("m.example")
    assert caught.value.retry_after_s == pytest.approx(120, abs=5)
    RateLimitedHosts(sessions).check("other.example")  # other hosts go ahead


def test_an_expired_limit_is_forgotten_and_the_fetch_proceeds(sessions) -> None:
    limit(sessions, "m.example", -1)
    RateLimitedHosts(sessions).check("m.example")
    with session_scope(sessions) as s:
        assert s.scalars(select(RateLimitedHost.hostname)).all() == []

"""The operator dashboard (docs/dashboard.md) in a real headless Chromium, against the
Procfile's `api` process and a seeded database: login, every section, the token inspector,
a refused token, and a token that never reaches a URL. Screenshots: test-artifacts/dashboard/."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import sessionmaker
from support.broker import emptied
from support.browser import PageErrors, headless_chromium, screenshot
from support.builders import add_contract, add_metadata, add_token
from support.processes import running_api

from shared.db import make_engine, session_scope
from shared.host_slot_keys import KEY_PREFIX
from shared.images.storage import LocalStorage
from shared.indexing.fetch_history import METADATA, FetchAttempt, attempt_rows, write_attempts
from shared.models import FetchOutcome, Job, JobStatus, RateLimitedHost, SmartContract, Token
from shared.queues import TOKENS_QUEUE
from shared.reads.queue_lengths import queue_keys

pytestmark = pytest.mark.e2e
TOKEN = "dashboard-admin-token-for-browser-tests"
TOKEN_KEY = "token-metadata-admin-token"  # the sessionStorage key of api/static/dashboard/api.js
THUMBNAIL_KEY = "dashboard/thumbnail.png"
TOKEN_NAME = "Dashboard Token #1"
BUSY_HOST_KEY = KEY_PREFIX + "busy.example"


@dataclass(frozen=True)
class Site:
    base: str
    collection: str  # an NFT collection half fetched, its token 1 with metadata and an image

    @property
    def page(self) -> str:
        return f"{self.base}/metadata/v1/dashboard"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), (53, 89, 199)).save(out, "PNG")
    return out.getvalue()


def seed(database_url: str, base: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        with session_scope(sessionmaker(bind=engine)) as s:
            nft = add_contract(s)
            s.execute(update(SmartContract).where(SmartContract.id == nft.id).values(token_count=7))
            first = add_token(s, nft, 1, uri="https://meta.example/1.json")
            add_metadata(
                s,
                first,
                name=TOKEN_NAME,
                description="A token the dashboard's tests inspect",
                image="https://meta.example/1.png",
                cached_image=f"{base}/metadata/v1/images/{THUMBNAIL_KEY}",
                cached_thumbnail_image=f"{base}/metadata/v1/images/{THUMBNAIL_KEY}",
            )
            for number, minutes_ago in ((2, 3), (3, 10)):
                token = add_token(s, nft, number, uri=f"https://meta.example/{number}.json")
                fetched = func.now() - timedelta(minutes=minutes_ago)
                s.execute(update(Token).where(Token.id == token.id).values(updated_at=fetched))
            add_token(s, nft, 4, job_status=JobStatus.PENDING, processed=False)
            add_token(s, nft, 5, job_status=JobStatus.QUEUED, processed=False)
            add_token(
                s,
                nft,
                6,
                job_status=JobStatus.INVALID,
                invalid_reason=107,
                processed=False,
                uri="https://broken.example/6.json",
            )
            # Token 7's host answers 500: two attempts so far, the next one due in 5 minutes.
            failing = add_token(s, nft, 7, processed=False, uri="https://failing.example/7.json")
            s.execute(
                update(Job)
                .where(Job.token_id == failing.id)
                .values(
                    status=JobStatus.PENDING,
                    retry_count=2,
                    invalid_reason=107,
                    retry_after=datetime.now(UTC) + timedelta(minutes=5),
                )
            )
            attempts = [
                FetchAttempt(
                    at=datetime.now(UTC) - timedelta(minutes=minutes),
                    kind=METADATA,
                    url="https://failing.example/7.json",
                    http_status=500,
                    bytes=None,
                    duration_ms=12,
                    outcome=FetchOutcome.HTTP_ERROR,
                    reason_code=107,
                )
                for minutes in (4, 2)
            ]
            write_attempts(s, list(attempt_rows(failing.id, "retry", attempts)))
            # Tokens 1 to 3 (and 6) finished within the progress window: a rate and a time left.
            s.execute(
                update(Job)
                .where(Job.token_id.in_(select(Token.id).where(Token.smart_contract_id == nft.id)))
                .where(Job.status != JobStatus.PENDING, Job.status != JobStatus.QUEUED)
                .values(updated_at=func.now())
            )
            other = add_contract(s)
            for number in (1, 2):
                add_token(s, other, number, job_status=JobStatus.PENDING, processed=False)
            add_token(
                s,
                other,
                3,
                job_status=JobStatus.FAILED,
                processed=False,
                uri="https://flaky.example/3",
            )
            s.execute(
                insert(RateLimitedHost).values(
                    hostname="slow.example", retry_after=datetime.now(UTC) + timedelta(minutes=5)
                )
            )
            return nft.principal
    finally:
        engine.dispose()


@pytest.fixture
def site(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Site]:
    images = tmp_path / "images"
    LocalStorage(images).put(THUMBNAIL_KEY, png())
    settings = {"ADMIN_API_TOKEN": TOKEN, "IMAGE_CACHE_LOCAL_DIR": str(images), "API_WORKERS": "1"}
    with (
        running_api(tmp_path, database_url, redis_url, **settings) as (base, _api),
        emptied(redis_url, *queue_keys(TOKENS_QUEUE), BUSY_HOST_KEY) as broker,
    ):
        collection = seed(database_url, base)
        broker.rpush(TOKENS_QUEUE, "waiting-1", "waiting-2", "waiting-3")  # no worker runs here
        held_until = broker.time()[0] + 600  # slots as a worker holds them, scored by expiry
        broker.zadd(BUSY_HOST_KEY, {"slot-1": held_until, "slot-2": held_until})
        yield Site(base, collection)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page: Page, token: str) -> None:
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#token-input", token)
    page.click("#login-form button[type=submit]")


def stored_token(page: Page) -> str | None:
    value: str | None = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    return value


def inspect(page: Page, site: Site, number: str = "1") -> None:
    page.select_option("#inspect-kind", "nft")
    page.fill("#inspect-principal", site.collection)
    page.fill("#inspect-token-id", number)
    page.click("#inspector-form button[type=submit]")


def test_logging_in_shows_every_section_without_a_console_error(page: Page, site: Site) -> None:
    errors = PageErrors.watch(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site.page)
    screenshot(page, "dashboard", "login")
    log_in(page, TOKEN)

    bars = page.locator("#backfill progress")
    expect(bars).to_have_count(2)
    collection_bar = page.locator(f'#backfill [data-contract="{site.collection}"]')
    # 4 of 7 finished (3 done, 1 invalid) in the last minute: 4/60 tokens/s, 3 left in 45 s.
    expect(collection_bar).to_contain_text("4 / 7 tokens (57.1 %)")
    expect(collection_bar).to_contain_text("0.07 tokens/s")
    expect(collection_bar).to_contain_text("time left: 45s")
    expect(page.locator("#throughput-chart rect.bar")).to_have_count(60)
    expect(page.locator("#throughput")).to_contain_text("3 tokens in the last hour")
    expect(page.locator("#failures")).to_contain_text("broken.example")
    expect(page.locator("#failures")).to_contain_text("flaky.example")
    expect(page.locator("#failures")).to_contain_text("responded with an error")
    expect(page.locator("#rate-limited")).to_contain_text("slow.example")
    expect(page.locator("#host-slots tr", has_text="busy.example")).to_contain_text("2")
    tokens_row = page.locator("#queues tr", has_text="tokens").first
    expect(tokens_row).to_contain_text("3")
    expect(page.locator("#queues")).to_contain_text("Jobs by status")
    expect(page.locator("#login-section")).to_be_hidden()
    screenshot(page, "dashboard", "dashboard")

    assert errors.all() == []
    assert stored_token(page) == TOKEN
    # (d) The token travels in a header only: never in the page's URL or any request's.
    assert TOKEN not in page.url
    assert requested
    assert not [url for url in requested if TOKEN in url]
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length") == 0


def test_the_inspector_shows_a_token_s_metadata_and_thumbnail(page: Page, site: Site) -> None:
    errors = PageErrors.watch(page)
    page.goto(site.page)
    log_in(page, TOKEN)
    expect(page.locator("#backfill progress")).to_have_count(2)
    inspect(page, site)

    metadata = page.locator("#inspect-metadata")
    expect(metadata).to_contain_text(TOKEN_NAME)
    expect(metadata).to_contain_text("A token the dashboard's tests inspect")
    expect(metadata).to_contain_text("https://meta.example/1.json")
    thumbnail = page.locator("#inspect-thumbnail")
    expect(thumbnail).to_have_attribute("src", f"{site.base}/metadata/v1/images/{THUMBNAIL_KEY}")
    page.wait_for_function("document.getElementById('inspect-thumbnail').naturalWidth === 40")
    screenshot(page, "dashboard", "inspector")
    # The history route may not exist yet (a 404 the page reports as "not available").
    assert errors.all(except_urls_ending=("/history",)) == []
    assert TOKEN not in page.url


def test_inspector_shows_history(page: Page, site: Site) -> None:
    page.goto(site.page)
    log_in(page, TOKEN)
    expect(page.locator("#backfill progress")).to_have_count(2)
    inspect(page, site)
    expect(page.locator("#inspect-metadata")).to_contain_text(TOKEN_NAME)
    history = page.locator("#inspect-history")
    expect(history.locator("tr", has_text="status").first).to_contain_text("done")
    expect(history).to_contain_text("Fetch attempts")


def test_inspector_shows_every_failed_attempt_and_when_the_next_is_due(
    page: Page, site: Site
) -> None:
    """A token whose host answers 500: each attempt with its status and reason, and the
    job's next try."""
    page.goto(site.page)
    log_in(page, TOKEN)
    expect(page.locator("#backfill progress")).to_have_count(2)
    inspect(page, site, number="7")
    history = page.locator("#inspect-history")
    expect(history).to_contain_text("Fetch attempts (2)")
    failed = history.locator("tr", has_text="http_error")
    expect(failed).to_have_count(2)
    for row in range(2):
        expect(failed.nth(row)).to_contain_text("500")
        expect(failed.nth(row)).to_contain_text("107")
        expect(failed.nth(row)).to_contain_text("https://failing.example/7.json")
    expect(history.locator("tr", has_text="status").first).to_contain_text("pending")
    expect(history.locator("tr", has_text="retry_after").first).not_to_have_text("retry_after")
    screenshot(page, "dashboard", "inspector-history")


def test_a_wrong_token_shows_the_login_again_and_is_forgotten(page: Page, site: Site) -> None:
    page.goto(site.page)
    log_in(page, "not-the-admin-token")
    expect(page.locator("#login-message")).to_contain_text("refused")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert stored_token(page) is None
    screenshot(page, "dashboard", "wrong-token")


def test_a_stored_token_the_api_refuses_brings_the_login_back(page: Page, site: Site) -> None:
    page.goto(site.page)
    log_in(page, TOKEN)
    expect(page.locator("#backfill progress")).to_have_count(2)
    page.evaluate(f"sessionStorage.setItem('{TOKEN_KEY}', 'a-rotated-token')")
    page.reload()  # the stored token is used at once, and refused
    expect(page.locator("#login-message")).to_contain_text("refused")
    expect(page.locator("#dashboard")).to_be_hidden()
    assert stored_token(page) is None


def test_a_failing_dashboard_route_is_reported_not_a_blank_page(page: Page, site: Site) -> None:
    page.route(
        "**/metadata/v1/admin/dashboard",
        lambda route: route.fulfill(status=503, content_type="application/json", body="{}"),
    )
    page.goto(site.page)
    log_in(page, TOKEN)
    expect(page.locator("#login-message")).to_contain_text("answered 503")
    assert stored_token(page) == TOKEN  # not refused: the page tries again
    page.unroute("**/metadata/v1/admin/dashboard")
    expect(page.locator("#backfill progress")).to_have_count(2, timeout=15_000)

"""Headless Chromium for browser tests: the system's package (`apt-get install chromium`,
which .ci/run does when it is missing), driven by Playwright; no browser is downloaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from support.processes import ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser")
# Screenshots of the browser tests, kept after the run (git-ignored).
ARTIFACTS = ROOT / "test-artifacts"


def system_chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "no system Chromium (looked for chromium, chromium-browser): "
        "apt-get install -y chromium (.ci/run installs it when missing)"
    )


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=system_chromium(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageErrors:
    """Console messages of type error and uncaught exceptions of one page."""

    console: list[ConsoleMessage] = field(default_factory=list)
    uncaught: list[str] = field(default_factory=list)

    @classmethod
    def watch(cls, page: Page) -> PageErrors:
        errors = cls()
        page.on("console", lambda m: errors.console.append(m) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.uncaught.append(str(exc)))
        return errors

    def all(self, except_urls_ending: tuple[str, ...] = ()) -> list[str]:
        """Every error, but failed loads of URLs ending as given (an expected 404)."""
        kept = [
            f"{m.text} ({m.location.get('url', '')})"
            for m in self.console
            if not str(m.location.get("url", "")).endswith(except_urls_ending or ("\0",))
        ]
        return kept + self.uncaught


# The screenshots this run took: the end of the run lists them (tests/conftest.py).
TAKEN: list[Path] = []


def screenshot(page: Page, folder: str, name: str) -> Path:
    """A full-page PNG under test-artifacts/<folder>/, its path printed for whoever looks."""
    path = ARTIFACTS / folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    TAKEN.append(path)
    return path

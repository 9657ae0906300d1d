"""The docs page loads Swagger UI's script and styles from the API itself, never from a CDN."""

from __future__ import annotations

import gzip
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from api.swagger_ui import ASSETS, ASSETS_DIR, MAX_AGE_S

DOCS = "/metadata/v1/docs"


class AssetLinks(HTMLParser):
    """Every `<script src>` and `<link href>` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


def asset_urls(client) -> list[str]:
    response = client.get(DOCS)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "http://" not in page
    assert "https://" not in page
    links = AssetLinks()
    links.feed(page)
    return links.urls


def test_the_docs_page_loads_only_same_origin_assets(client) -> None:
    urls = asset_urls(client)
    assert len(urls) == 3
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert not url.startswith("//"), url
        assert urljoin(DOCS, url).startswith("/metadata/v1/swagger-ui/"), url


def test_each_asset_is_served_with_its_type_and_cached(client) -> None:
    served = set()
    for url in asset_urls(client):
        path = urljoin(DOCS, url)
        name = path.rsplit("/", 1)[1]
        # As a browser asks: gzip accepted, from another origin. (`with`: the file is closed.)
        headers = {"Accept-Encoding": "gzip", "Origin": "http://x"}
        with client.get(path, headers=headers) as response:
            assert response.status_code == 200, path
            assert response.mimetype == ASSETS[name]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            body = response.get_data()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            assert body == (ASSETS_DIR / name).read_bytes()
            cache = response.cache_control
            assert cache.public
            assert cache.max_age == MAX_AGE_S
            assert cache.immutable
            etag = response.headers["ETag"]
        with client.get(path, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
        served.add(name)
    assert served == set(ASSETS)


def test_only_the_page_s_assets_are_served(client) -> None:
    base = urljoin(DOCS, asset_urls(client)[0]).rsplit("/", 1)[0]
    for name in ("package.json", "LICENSE", "..%2Fswagger_ui.py", "swagger-ui.js"):
        with client.get(f"{base}/{name}") as response:
            assert response.status_code == 404, name

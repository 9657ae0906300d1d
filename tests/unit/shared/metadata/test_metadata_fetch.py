"""MetadataFetcher against real HTTP servers on 127.0.0.1; nothing ever leaves the machine."""

import contextlib
import email.utils
import gzip
import io
import resource
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shared.errors import (
    FetchCancelledError,
    MetadataHttpError,
    MetadataSizeExceededError,
    MetadataTimeoutError,
    TooManyRequestsError,
)
from shared.metadata.fetch import Cancellation, FetchLimits, MetadataFetcher, parse_retry_after
from shared.metadata.netguard import BlockedAddressError, NetGuard

Route = Callable[["Handler"], None]
MB = 1024 * 1024


class LocalServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str], int]] = []
        self.stop = threading.Event()
        self.sent: dict[str, int] = {}
        self.finished: dict[str, threading.Event] = {}

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.seen]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients in these tests hang up mid-response on purpose


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 2  # a handler never outlives a forgotten keep-alive connection by much
    server: LocalServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers), self.client_address[1]))
        route = self.server.routes.get(self.path)
        if route is None:
            reply(self, 404, b"not found")
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


def reply(
    handler: Handler, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    try:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except OSError:
        handler.close_connection = True  # the client went away


def body(content: bytes, status: int = 200, **headers: str) -> Route:
    return lambda handler: reply(handler, status, content, headers)


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler: reply(handler, status, b"", {"Location": location})


def stream(total: int, declare_length: bool) -> Route:
    """Send `total` bytes in 64 KiB writes, recording how many went out before the client left."""

    def route(handler: Handler) -> None:
        handler.server.finished[handler.path] = done = threading.Event()
        sent = 0
        try:
            handler.send_response(200)
            if declare_length:
                handler.send_header("Content-Length", str(total))
            else:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            handler.end_headers()
            chunk = b"0" * 65536
            while sent < total and not handler.server.stop.is_set():
                handler.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            handler.close_connection = True
        finally:
            handler.server.sent[handler.path] = sent
            done.set()

    return route


def trickle(declare_length: bool) -> Route:
    """Headers at once, then one body byte every 50 ms for up to 10 s."""

    def route(handler: Handler) -> None:
        handler.send_response(200)
        if declare_length:
            handler.send_header("Content-Length", "200")
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        try:
            for _ in range(200):
                if handler.server.stop.wait(0.05):
                    return
                handler.wfile.write(b" ")
        except OSError:
            handler.close_connection = True

    return route


def trickle_headers(handler: Handler) -> None:
    handler.close_connection = True
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(60):
            if handler.server.stop.wait(0.05):
                return
            handler.wfile.write(f"X-Slow-{index}: 1\r\n".encode())
    except OSError:
        return


def slow_headers(handler: Handler) -> None:
    if not handler.server.stop.wait(5):
        reply(handler, 200, b'{"name": "late"}')


@contextlib.contextmanager
def running(local: LocalServer) -> Iterator[LocalServer]:
    thread = threading.Thread(target=local.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield local
    finally:
        local.stop.set()
        local.shutdown()
        local.server_close()
        thread.join()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running(LocalServer()) as local:
        yield local


@pytest.fixture
def make_fetcher(server: LocalServer) -> Iterator[Callable[..., MetadataFetcher]]:
    """Fetchers closed before the server stops (they depend on it), so keep-alives end."""
    made: list[MetadataFetcher] = []

    def make(limits: FetchLimits | None = None, guard: NetGuard | None = None) -> MetadataFetcher:
        fetcher = MetadataFetcher(limits or FetchLimits(), guard or NetGuard(allow_private=True))
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


@pytest.fixture
def fetcher(make_fetcher: Callable[..., MetadataFetcher]) -> MetadataFetcher:
    return make_fetcher(FetchLimits(timeout_s=2.0, total_timeout_s=5.0))


# --- status codes


def test_200_json_body(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/1.json"] = body(b'{"name": "One"}', **{"Content-Type": "application/json"})

    assert fetcher.fetch_bytes(server.url("/1.json")) == b'{"name": "One"}'
    assert server.seen[0][1]["User-Agent"] == "stacks-token-metadata"


def test_extra_headers_are_sent(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/g"] = body(b"ok")

    fetcher.fetch_bytes(server.url("/g"), {"Authorization": "Bearer 1234567890"})

    assert server.seen[0][1]["Authorization"] == "Bearer 1234567890"


@pytest.mark.parametrize("status", [404, 500, 403, 302])
def test_error_statuses_are_http_errors(
    server: LocalServer, fetcher: MetadataFetcher, status: int
) -> None:
    server.routes["/e"] = body(b"nope", status=status)

    with pytest.raises(MetadataHttpError, match=f"HTTP {status} from {server.url('/e')}"):
        fetcher.fetch_bytes(server.url("/e"))


def test_429_with_seconds(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/r"] = body(b"slow down", status=429, **{"Retry-After": "120"})

    with pytest.raises(TooManyRequestsError) as caught:
        fetcher.fetch_bytes(server.url("/r"))

    assert (caught.value.hostname, caught.value.retry_after_s) == ("127.0.0.1", 120.0)
    assert caught.value.url == server.url("/r")


def test_429_with_http_date(server: LocalServer, fetcher: MetadataFetcher) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    retry_after = email.utils.format_datetime(later, usegmt=True)
    server.routes["/r"] = body(b"", status=429, **{"Retry-After": retry_after})

    with pytest.raises(TooManyRequestsError) as caught:
        fetcher.fetch_bytes(server.url("/r"))

    assert caught.value.retry_after_s is not None
    assert 3590 <= caught.value.retry_after_s <= 3601


def test_429_without_retry_after(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/r"] = body(b"", status=429)

    with pytest.raises(TooManyRequestsError) as caught:
        fetcher.fetch_bytes(server.url("/r"))

    assert caught.value.retry_after_s is None


# --- redirects


def hops(server: LocalServer, count: int) -> None:
    for index in range(1, count + 1):
        server.routes[f"/hop/{index}"] = redirect(f"/hop/{index - 1}")
    server.routes["/hop/0"] = body(b'{"name": "arrived"}')


def test_redirect_chain_within_the_limit(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    hops(server, 5)

    fetched = make_fetcher(FetchLimits(max_redirects=5)).fetch_bytes(server.url("/hop/5"))

    assert fetched == b'{"name": "arrived"}'
    assert server.paths() == [f"/hop/{n}" for n in range(5, -1, -1)]


def test_too_many_redirects(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    hops(server, 6)

    with pytest.raises(MetadataHttpError, match="Too many redirects"):
        make_fetcher(FetchLimits(max_redirects=5)).fetch_bytes(server.url("/hop/6"))
    assert len(server.seen) == 6


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_is_followed(
    server: LocalServer, fetcher: MetadataFetcher, status: int
) -> None:
    server.routes["/moved"] = redirect(server.url("/there"), status)
    server.routes["/there"] = body(b"here")

    assert fetcher.fetch_bytes(server.url("/moved")) == b"here"


@pytest.mark.parametrize(
    "location",
    [
        "ftp://127.0.0.1/x.json",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "javascript:alert(1)",
        "http://[::1/x",
        "http://127.0.0.1:port/",
    ],
)
def test_redirect_to_a_non_http_target_is_refused(
    server: LocalServer, fetcher: MetadataFetcher, location: str
) -> None:
    server.routes["/bad"] = redirect(location)

    with pytest.raises(MetadataHttpError, match="not an http"):
        fetcher.fetch_bytes(server.url("/bad"))


def test_gateway_headers_stay_on_their_origin(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    names = {"gateway.test": ["127.0.0.1"], "elsewhere.test": ["127.0.0.1"]}
    guard = NetGuard(allow_private=True, resolver=lambda host, port: names[host])
    server.routes["/same"] = redirect("/cross")
    server.routes["/cross"] = redirect(server.url("/end", host="elsewhere.test"))
    server.routes["/end"] = body(b"end")

    make_fetcher(guard=guard).fetch_bytes(server.url("/same", "gateway.test"), {"X-Key": "secret"})

    assert [headers.get("X-Key") for _, headers, _ in server.seen] == ["secret", "secret", None]


# --- sizes


def test_content_length_over_the_limit_is_refused_before_the_body(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/big"] = stream(50 * MB, declare_length=True)
    started = time.monotonic()

    with pytest.raises(MetadataSizeExceededError, match="declares"):
        make_fetcher(FetchLimits(max_bytes=1_000_000)).fetch_bytes(server.url("/big"))

    assert server.finished["/big"].wait(10)
    assert server.sent["/big"] < 20 * MB
    assert time.monotonic() - started < 10


def test_streamed_body_over_the_limit_is_cut_short(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/big"] = stream(50 * MB, declare_length=False)
    started = time.monotonic()

    with pytest.raises(MetadataSizeExceededError, match="sent over 1000000 bytes"):
        make_fetcher(FetchLimits(max_bytes=1_000_000)).fetch_bytes(server.url("/big"))

    assert server.finished["/big"].wait(10)
    assert server.sent["/big"] < 20 * MB
    assert time.monotonic() - started < 10


def test_body_exactly_at_the_limit_is_accepted(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/x"] = body(b"x" * 1000)

    assert len(make_fetcher(FetchLimits(max_bytes=1000)).fetch_bytes(server.url("/x"))) == 1000


def test_fetch_bytes_takes_its_own_limit(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/img"] = body(b"\x89PNG" + b"\x00" * 5000)

    assert fetcher.fetch_bytes(server.url("/img"), max_bytes=10_000).startswith(b"\x89PNG")
    with pytest.raises(MetadataSizeExceededError):
        fetcher.fetch_bytes(server.url("/img"), max_bytes=1000)


def test_oversized_headers_are_refused(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/h"] = body(b"{}", **{f"X-Filler-{n}": "y" * 1000 for n in range(20)})

    with pytest.raises(MetadataHttpError, match="Headers of"):
        make_fetcher(FetchLimits(max_header_bytes=10_000)).fetch_bytes(server.url("/h"))


def gzip_bomb(decoded_bytes: int) -> bytes:
    """A gzip stream of `decoded_bytes` zeros (about a thousandth of that on the wire), made
    a megabyte at a time so the test itself never holds the decoded size."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        for _ in range(decoded_bytes // MB):
            stream.write(bytes(MB))
    return out.getvalue()


def test_a_compressed_answer_is_decoded(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/z"] = body(gzip.compress(b'{"name": "zipped"}'), **{"Content-Encoding": "gzip"})

    assert fetcher.fetch_bytes(server.url("/z")) == b'{"name": "zipped"}'
    assert "gzip" in server.seen[0][1]["Accept-Encoding"]


def test_a_gzip_bomb_is_cut_at_the_limit_on_its_decoded_bytes(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    bomb = gzip_bomb(200 * MB)
    assert len(bomb) < 1_000_000  # within the limit as sent: only decoding shows its size
    server.routes["/bomb"] = body(bomb, **{"Content-Encoding": "gzip"})
    limit = 1_000_000
    fetcher = make_fetcher(FetchLimits(max_bytes=limit))
    before = _peak_rss_kb()

    with pytest.raises(MetadataSizeExceededError, match=f"sent over {limit} bytes"):
        fetcher.fetch_bytes(server.url("/bomb"))

    assert _peak_rss_kb() - before < 50 * 1024  # never near the 200 MB it decodes to


def test_a_flood_of_small_headers_within_the_cap_is_read(
    server: LocalServer, fetcher: MetadataFetcher
) -> None:
    headers = {f"X-H{n}": "1" for n in range(3000)}  # about 30 KB of the 64 KiB allowed
    server.routes["/many"] = body(b'{"name": "ok"}', **headers)

    assert fetcher.fetch_bytes(server.url("/many")) == b'{"name": "ok"}'


def test_a_flood_of_headers_past_the_cap_is_refused(
    server: LocalServer, fetcher: MetadataFetcher
) -> None:
    server.routes["/flood"] = body(b"{}", **{f"X-H{n}": "1" for n in range(10_000)})

    # Whichever cap comes first: our 64 KiB, or libcurl's 5,000 header lines.
    with pytest.raises(MetadataHttpError, match=r"Headers of over 65536 bytes|Too many response"):
        fetcher.fetch_bytes(server.url("/flood"))


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- time


def test_slow_headers_time_out(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/slow"] = slow_headers
    started = time.monotonic()

    with pytest.raises(MetadataTimeoutError):
        make_fetcher(FetchLimits(timeout_s=0.2)).fetch_bytes(server.url("/slow"))

    assert time.monotonic() - started < 2


@pytest.mark.parametrize("declare_length", [True, False])
def test_trickling_body_hits_the_total_timeout(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher], declare_length: bool
) -> None:
    server.routes["/trickle"] = trickle(declare_length)
    started = time.monotonic()
    limits = FetchLimits(timeout_s=1.0, total_timeout_s=0.3)

    with pytest.raises(MetadataTimeoutError):
        make_fetcher(limits).fetch_bytes(server.url("/trickle"))

    assert time.monotonic() - started < 2


def test_trickling_headers_hit_the_total_timeout(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/trickle-headers"] = trickle_headers
    started = time.monotonic()
    limits = FetchLimits(timeout_s=1.0, total_timeout_s=0.3)

    with pytest.raises(MetadataTimeoutError):
        make_fetcher(limits).fetch_bytes(server.url("/trickle-headers"))

    assert time.monotonic() - started < 2


def test_total_timeout_spans_redirects(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/first"] = redirect("/slow")
    server.routes["/slow"] = slow_headers
    started = time.monotonic()

    with pytest.raises(MetadataTimeoutError):
        make_fetcher(FetchLimits(timeout_s=1.0, total_timeout_s=0.3)).fetch_bytes(
            server.url("/first")
        )

    assert time.monotonic() - started < 2


def test_pool_keeps_working_after_a_timeout(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/trickle"] = trickle(declare_length=True)
    server.routes["/ok"] = body(b"fine")
    fetcher = make_fetcher(FetchLimits(timeout_s=1.0, total_timeout_s=0.3))

    with pytest.raises(MetadataTimeoutError):
        fetcher.fetch_bytes(server.url("/trickle"))

    assert fetcher.fetch_bytes(server.url("/ok")) == b"fine"


# --- connections


def test_connection_refused_is_an_http_error(fetcher: MetadataFetcher) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]

    with pytest.raises(MetadataHttpError) as caught:
        fetcher.fetch_bytes(f"http://127.0.0.1:{port}/1.json")
    assert not isinstance(caught.value, BlockedAddressError)


def test_dns_failure_is_an_http_error(make_fetcher: Callable[..., MetadataFetcher]) -> None:
    def no_such_host(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    fetcher = make_fetcher(guard=NetGuard(allow_private=True, resolver=no_such_host))

    with pytest.raises(MetadataHttpError, match="Name or service not known"):
        fetcher.fetch_bytes("http://metadata.invalid/1.json")


def test_tls_failure_is_an_http_error(server: LocalServer, fetcher: MetadataFetcher) -> None:
    with pytest.raises(MetadataHttpError, match="SSL"):
        fetcher.fetch_bytes(f"https://127.0.0.1:{server.port}/1.json")


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, list[str]]]:
    """TLS with a self-signed certificate for good.test; also yields the SNI names seen."""
    if shutil.which("openssl") is None:
        pytest.fail(
            "the openssl command is not installed; this test needs it to make a certificate"
        )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", str(key), "-out", str(cert)),
            *("-subj", "/CN=good.test", "-addext", "subjectAltName=DNS:good.test"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    local = LocalServer()
    local.socket = context.wrap_socket(local.socket, server_side=True)
    with running(local):
        yield local, names


def test_tls_is_verified_against_the_host_name_not_the_address(
    tls_server: tuple[LocalServer, list[str]],
) -> None:
    server, names = tls_server
    guard = NetGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    server.routes["/1.json"] = body(b'{"name": "self-signed"}')

    with (
        MetadataFetcher(FetchLimits(timeout_s=2.0), guard) as fetcher,
        pytest.raises(MetadataHttpError, match=r"SSL certificate .*self-signed"),
    ):
        fetcher.fetch_bytes(f"https://good.test:{server.port}/1.json")

    assert names == ["good.test"]
    assert server.seen == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "http://[::1/"])
def test_non_http_urls_are_refused(fetcher: MetadataFetcher, url: str) -> None:
    with pytest.raises(MetadataHttpError, match="not an http"):
        fetcher.fetch_bytes(url)


def test_keep_alive_reuses_one_connection(server: LocalServer, fetcher: MetadataFetcher) -> None:
    server.routes["/a"] = body(b"a")

    assert [fetcher.fetch_bytes(server.url("/a")) for _ in range(3)] == [b"a", b"a", b"a"]

    assert len({client_port for _, _, client_port in server.seen}) == 1


def test_concurrent_fetches_from_several_threads(
    server: LocalServer, fetcher: MetadataFetcher
) -> None:
    server.routes["/a"] = body(b'{"name": "a"}')

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(lambda _: fetcher.fetch_bytes(server.url("/a")), range(40)))

    assert bodies == [b'{"name": "a"}'] * 40


# --- cancellation from another thread


def test_a_cancellation_stops_a_fetch_stalled_on_a_kept_connection_at_once(
    server: LocalServer, fetcher: MetadataFetcher
) -> None:
    server.routes["/a"] = body(b"a")
    server.routes["/stall"] = slow_headers  # no answer for 5 s
    cancellation = Cancellation()
    with ThreadPoolExecutor(max_workers=1) as one_thread:  # one thread: one handle
        assert one_thread.submit(fetcher.fetch_bytes, server.url("/a")).result() == b"a"
        stalled = one_thread.submit(
            fetcher.fetch_bytes, server.url("/stall"), None, None, cancellation
        )
        deadline = time.monotonic() + 2.0
        while "/stall" not in server.paths():
            assert time.monotonic() < deadline, "the stalled request never arrived"
            time.sleep(0.005)
        cancelled_at = time.monotonic()
        cancellation.set()
        with pytest.raises(FetchCancelledError):
            stalled.result(timeout=2.0)
        assert time.monotonic() - cancelled_at < 0.2  # not libcurl's once-a-second look
        # The next fetch on that thread connects anew: the kept connection was shut down.
        assert one_thread.submit(fetcher.fetch_bytes, server.url("/a")).result() == b"a"

    ports = [client_port for _, _, client_port in server.seen]
    assert ports[0] == ports[1] != ports[2]


def test_a_fetch_cancelled_before_it_starts_opens_no_connection(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    internet = LoopbackInternet(server.port)
    fetcher = make_fetcher(guard=NetGuard(allow_private=True, connector=internet))
    server.routes["/a"] = body(b"a")
    cancellation = Cancellation()
    cancellation.set()

    with pytest.raises(FetchCancelledError):
        fetcher.fetch_bytes(server.url("/a"), cancelled=cancellation)

    assert internet.calls == []
    assert server.seen == []


# --- the guard on real connections


def test_private_address_is_refused_before_any_request(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    server.routes["/1.json"] = body(b'{"name": "secret"}')
    fetcher = make_fetcher(guard=NetGuard(allow_private=False))

    with pytest.raises(BlockedAddressError, match="loopback"):
        fetcher.fetch_bytes(server.url("/1.json"))

    assert server.seen == []


class LoopbackInternet:
    """A connector standing in for the internet: records the checked IP, dials our server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[str] = []

    def __call__(self, ip: str, port: int, timeout: float) -> socket.socket:
        self.calls.append(ip)
        return socket.create_connection(("127.0.0.1", self.port), timeout)


@pytest.mark.parametrize("target_host", ["internal.test", "127.0.0.1", "2130706433"])
def test_redirect_from_a_public_host_to_a_private_one_is_refused(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher], target_host: str
) -> None:
    names = {"public.test": ["93.184.216.34"], "internal.test": ["10.0.0.5"]}
    internet = LoopbackInternet(server.port)
    guard = NetGuard(allow_private=False, resolver=lambda h, p: names[h], connector=internet)
    server.routes["/start"] = redirect(server.url("/secret", host=target_host))
    server.routes["/secret"] = body(b'{"name": "secret"}')

    with pytest.raises(BlockedAddressError):
        make_fetcher(guard=guard).fetch_bytes(server.url("/start", host="public.test"))

    assert internet.calls == ["93.184.216.34"]
    assert server.paths() == ["/start"]


# --- Retry-After

NOW = datetime(2015, 10, 21, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("120, 60", 120.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 26880.0),
        ("Wed, 21 Oct 2015 01:00:00 GMT", 3600.0),
        ("Wed, 21 Oct 2015 00:00:00 GMT", None),
        ("Tue, 20 Oct 2015 07:28:00 GMT", None),
        ("0", None),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_rounds_partial_seconds_up() -> None:
    now = datetime(2015, 10, 21, 0, 59, 59, 500_000, tzinfo=UTC)

    assert parse_retry_after("Wed, 21 Oct 2015 01:00:00 GMT", now) == 1.0


def test_parse_retry_after_reads_naive_now_as_utc() -> None:
    naive = datetime(2015, 10, 21, 0, 0)

    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", naive) == 26880.0


def test_an_ipv6_literal_host_is_connected_through_the_guard(
    server: LocalServer, make_fetcher: Callable[..., MetadataFetcher]
) -> None:
    internet = LoopbackInternet(server.port)
    guard = NetGuard(allow_private=True, connector=internet)
    server.routes["/1.json"] = body(b'{"name": "v6"}')

    fetched = make_fetcher(guard=guard).fetch_bytes(f"http://[2001:db8::1]:{server.port}/1.json")

    assert fetched == b'{"name": "v6"}'
    assert internet.calls == ["2001:db8::1"]

"""libcurl easy handles kept one per thread, for the hot HTTP clients of a worker.

A worker makes two HTTP exchanges per token (the node call and the metadata fetch) from a
hundred threads. libcurl (pycurl) does an exchange in about a tenth of the CPU that
requests/urllib3 take, and releases the GIL for the whole of it. A handle is not
thread-safe; each thread's handle keeps its own keep-alive connections.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import certifi
import pycurl

# Only plain HTTP(S): no file://, gopher:// or anything else libcurl knows.
HTTP_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
KEPT_CONNECTIONS = 2


def new_handle() -> pycurl.Curl:
    """A handle with the settings every client here wants."""
    handle = pycurl.Curl()
    handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: required with threads
    handle.setopt(pycurl.PROTOCOLS, HTTP_PROTOCOLS)
    # Never through a proxy from the environment: it would bypass the NetGuard.
    handle.setopt(pycurl.PROXY, "")
    handle.setopt(pycurl.NOPROXY, "*")
    handle.setopt(pycurl.FOLLOWLOCATION, 0)  # redirects are followed, and checked, by hand
    handle.setopt(pycurl.CAINFO, certifi.where())
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    # Idle keep-alive connections a handle keeps (to the hosts it used last): a hundred
    # threads with three clients each must stay well under the usual 1,024 descriptors.
    handle.setopt(pycurl.MAXCONNECTS, KEPT_CONNECTIONS)
    return handle


class ThreadHandles:
    """One configured handle per thread, made on first use; `close()` closes them all."""

    def __init__(self, configure: Callable[[pycurl.Curl], None] | None = None) -> None:
        self._configure = configure
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[pycurl.Curl] = []

    def get(self) -> pycurl.Curl:
        handle: pycurl.Curl | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = new_handle()
            if self._configure is not None:
                self._configure(handle)
            self._local.handle = handle
            with self._lock:
                self._all.append(handle)
        return handle

    def close(self) -> None:
        """Close every handle and its connections (at shutdown: a busy handle is skipped)."""
        with self._lock:
            handles, self._all = self._all, []
        for handle in handles:
            with contextlib.suppress(pycurl.error):
                handle.close()
        self._local = threading.local()


def error_parts(exc: pycurl.error) -> tuple[int, str]:
    """libcurl's error code and message from a failed perform."""
    args = exc.args
    return int(args[0]), str(args[-1])

"""Settings: the only place that reads the environment (a `.env` file is honoured)."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote, urlsplit

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/token_metadata"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_IPFS_REPLACED = "ipfs.io,dweb.link,gateway.pinata.cloud,cloudflare-ipfs.com,infura-ipfs.io"
# "none": connections straight to Postgres (or a session-mode pooler); "pgbouncer": a pooler
# in transaction mode (docs/replicas-and-poolers.md#poolers).
DATABASE_POOLERS = ("none", "pgbouncer")
DATABASE_URL_SETTINGS = (
    "database_url",
    "database_read_url",
    "database_session_url",
    "stacks_api_database_url",
)
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    # The API's public read routes read here when set (a streaming replica); everything
    # that writes, and every worker, beat and stream, uses DATABASE_URL
    # (docs/replicas-and-poolers.md#read-replicas).
    database_read_url: str | None = None
    # "pgbouncer": DATABASE_URL (and DATABASE_READ_URL) go through a pooler in transaction
    # mode, so no prepared statements and no session state (docs/replicas-and-poolers.md#poolers).
    database_pooler: str = "none"
    # A session-mode or direct connection for what needs a session of its own (the stream's
    # LISTEN); unset: DATABASE_URL, unless that goes through a transaction-mode pooler.
    database_session_url: str | None = None
    stacks_api_database_url: str | None = None
    stacks_node_rpc_url: str | None = None
    network: str = "mainnet"
    api_host: str = "0.0.0.0"  # noqa: S104 - the API is meant to be reachable
    api_port: int = 3000
    # The `api` process: server worker processes, request threads in each, access log ("-":
    # standard output, "off": none, else a file path).
    api_workers: int = 2
    api_threads: int = 4
    api_access_log: str = "-"
    chain_poll_interval_s: float = 5.0
    # Not in Hiro's API: what the chain monitor does when the Stacks API database has no row
    # for the block it stopped at (re-synced or restored): "resume" waits for it and goes on
    # from the highest block both agree on, "reimport" imports its history again
    # (docs/chain-monitor.md#database-swap).
    chain_database_swap_policy: str = "resume"
    stacks_node_timeout_s: float = 10.0

    job_queue_strict_mode: bool = False
    job_queue_max_retries: int = 10
    job_queue_concurrency_limit: int = 5
    job_queue_size_limit: int = 200
    job_queue_timeout_ms: int = 60_000
    job_queue_retry_after_ms: int = 5_000
    job_queue_invalid_retry_after_ms: int = 3_600_000

    metadata_max_immediate_uri_retries: int = 3
    metadata_fetch_timeout_ms: int = 30_000
    metadata_max_payload_byte_size: int = 1_000_000
    metadata_max_nft_contract_token_count: int = 50_000
    metadata_dynamic_token_refresh_interval: int = 86_400
    metadata_rate_limited_host_retry_after: int = 60
    metadata_fetch_max_redirections: int = 5
    metadata_fetch_allow_private_networks: bool = False
    metadata_host_concurrency_limit: int = 16
    # Not in Hiro's API: each host's limit moves between 1 and its cap with how it answers.
    metadata_host_adaptive_concurrency: bool = True
    # Not in Hiro's API: node calls and metadata fetches a worker process runs at once.
    worker_fetch_concurrency: int = 100
    public_gateway_concurrency_limit: int = 64

    public_gateway_ipfs: str = "https://cloudflare-ipfs.com"
    public_gateway_ipfs_extra_header: str | None = None
    public_gateway_ipfs_replaced: tuple[str, ...] = tuple(DEFAULT_IPFS_REPLACED.split(","))
    public_gateway_arweave: str = "https://arweave.net"
    # Not in Hiro's API: ipfs:// content is asked for as a block and checked against its CID
    # where one block holds the file (docs/gateways.md#verified-content).
    ipfs_verify_content: bool = True

    image_cache_processor_enabled: bool = False
    image_cache_resize_width: int = 300
    image_cache_gcs_bucket_name: str | None = None
    image_cache_gcs_object_name_prefix: str | None = None
    image_cache_cdn_base_path: str | None = None
    image_cache_max_byte_size: int | None = None
    # Not in Hiro's API: where cached images go. "local" writes under IMAGE_CACHE_LOCAL_DIR
    # and the API serves them under /metadata/v1/images/; "s3" uploads to an S3-compatible bucket.
    image_cache_storage: str = "local"
    image_cache_local_dir: str = ".run/images"
    image_cache_s3_bucket: str | None = None
    image_cache_s3_prefix: str | None = None
    image_cache_s3_endpoint_url: str | None = None
    image_cache_max_pixels: int = 50_000_000

    # Self-service refreshes (docs/marketplace-api.md#refresh): a token is refreshed at most
    # once per REFRESH_COOLDOWN_S (0: no cooldown), a client asks at most REFRESH_CLIENT_LIMIT
    # times an hour, and X-Forwarded-For names the client only when the request comes from one
    # of TRUSTED_PROXIES (IPs or CIDRs, comma-separated).
    refresh_cooldown_s: int = 600
    refresh_client_limit: int = 60
    trusted_proxies: tuple[str, ...] = ()

    # How long change-log entries are kept for the feed (docs/change-feed.md#retention).
    changes_retention_days: int = 7
    # The `stream` process (docs/change-feed.md#stream): where it listens, the heartbeat it
    # sends idle subscribers, and how often it reads the log when no notification woke it.
    stream_host: str = "0.0.0.0"  # noqa: S104 - the stream is meant to be reachable
    stream_port: int = 3001
    stream_heartbeat_s: float = 15.0
    stream_poll_s: float = 5.0

    # Webhooks (docs/webhooks.md): a POST waits at most WEBHOOK_TIMEOUT_S; failed deliveries
    # are retried after WEBHOOK_BACKOFF_BASE_S doubled per attempt, at most
    # WEBHOOK_MAX_BACKOFF_S; an endpoint failing for WEBHOOK_DISABLE_AFTER_H hours is paused.
    webhook_timeout_s: float = 10.0
    webhook_backoff_base_s: float = 10.0
    webhook_max_backoff_s: float = 86_400.0
    webhook_disable_after_h: float = 24.0

    # Admin routes under /metadata/v1/admin/ exist only when this is set.
    admin_api_token: str | None = None
    # "text" (default) or "json": one JSON object per log line.
    log_format: str = "text"
    # The least severe level logged (DEBUG, INFO, WARNING, ERROR, CRITICAL).
    log_level: str = "INFO"
    # Each worker process serves its Prometheus metrics on this port (0 disables them).
    worker_metrics_port: int = 9808

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting once; raise ConfigError naming the first bad variable."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse_value(f.name.upper(), raw, f.type)
        values["database_url"] = _database_url(env)
        node_url = _node_rpc_url(env)
        if node_url is not None:
            values["stacks_node_rpc_url"] = node_url
        for name in DATABASE_URL_SETTINGS:
            if values.get(name):
                values[name] = normalize_database_url(values[name], name.upper())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.database_pooler not in DATABASE_POOLERS:
            choices = " or ".join(DATABASE_POOLERS)
            raise ConfigError(f"DATABASE_POOLER must be {choices}, got {self.database_pooler!r}")
        if self.network not in ("mainnet", "testnet"):
            raise ConfigError(f"NETWORK must be mainnet or testnet, got {self.network!r}")
        _require_url("REDIS_URL", self.redis_url, ("redis", "rediss", "unix"))
        if self.stacks_node_rpc_url:
            _require_url("STACKS_NODE_RPC_URL", self.stacks_node_rpc_url, ("http", "https"))
        for name in ("public_gateway_ipfs", "public_gateway_arweave"):
            _require_gateway_urls(name.upper(), getattr(self, name))
        if not 0 < self.api_port < 65536:
            raise ConfigError(f"API_PORT must be a TCP port, got {self.api_port}")
        for name in ("api_workers", "api_threads"):
            if getattr(self, name) < 1:
                value = getattr(self, name)
                raise ConfigError(f"{name.upper()} must be at least 1, got {value}")
        if self.log_level.upper() not in LOG_LEVELS:
            choices = ", ".join(LOG_LEVELS)
            raise ConfigError(f"LOG_LEVEL must be one of {choices}, got {self.log_level!r}")
        if self.chain_poll_interval_s <= 0:
            raise ConfigError("CHAIN_POLL_INTERVAL_S must be positive")
        if self.chain_database_swap_policy not in ("resume", "reimport"):
            policy = self.chain_database_swap_policy
            raise ConfigError(
                f"CHAIN_DATABASE_SWAP_POLICY must be resume or reimport, got {policy!r}"
            )
        if self.worker_fetch_concurrency < 1:
            raise ConfigError("WORKER_FETCH_CONCURRENCY must be at least 1")
        if self.image_cache_storage not in ("local", "s3"):
            raise ConfigError(
                f"IMAGE_CACHE_STORAGE must be local or s3, got {self.image_cache_storage!r}"
            )
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"LOG_FORMAT must be text or json, got {self.log_format!r}")
        if not 0 <= self.worker_metrics_port < 65536:
            raise ConfigError(
                f"WORKER_METRICS_PORT must be a TCP port or 0, got {self.worker_metrics_port}"
            )
        if self.refresh_cooldown_s < 0:
            cooldown = self.refresh_cooldown_s
            raise ConfigError(f"REFRESH_COOLDOWN_S must be 0 or more, got {cooldown}")
        if self.refresh_client_limit < 1:
            raise ConfigError(
                f"REFRESH_CLIENT_LIMIT must be at least 1, got {self.refresh_client_limit}"
            )
        if self.changes_retention_days < 1:
            days = self.changes_retention_days
            raise ConfigError(f"CHANGES_RETENTION_DAYS must be at least 1, got {days}")
        if not 0 < self.stream_port < 65536:
            raise ConfigError(f"STREAM_PORT must be a TCP port, got {self.stream_port}")
        for name in (
            "stream_heartbeat_s",
            "stream_poll_s",
            "webhook_timeout_s",
            "webhook_backoff_base_s",
            "webhook_max_backoff_s",
            "webhook_disable_after_h",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name.upper()} must be positive, got {getattr(self, name)}")
        self.trusted_proxy_networks()

    @property
    def transaction_pooled(self) -> bool:
        """DATABASE_URL goes through a pooler in transaction mode."""
        return self.database_pooler == "pgbouncer"

    def reads_url(self) -> str:
        """Where the API's public read routes read: the replica, else the primary."""
        return self.database_read_url or self.database_url

    def session_url(self) -> str | None:
        """A connection that keeps its session (LISTEN): DATABASE_SESSION_URL, else
        DATABASE_URL when no transaction-mode pooler is in between, else None."""
        if self.database_session_url:
            return self.database_session_url
        return None if self.transaction_pooled else self.database_url

    def trusted_proxy_networks(self) -> tuple[IpNetwork, ...]:
        """TRUSTED_PROXIES as networks (an address is a network of one); ConfigError names
        the first entry that is neither an IP address nor a CIDR."""
        return _networks(self.trusted_proxies)


def _networks(entries: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                f"TRUSTED_PROXIES has {entry!r}, which is neither an IP address nor a CIDR "
                "(expected e.g. 10.0.0.1,10.1.0.0/16,fd00::/8)"
            ) from None
    return tuple(networks)


def _parse_value(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    parsers: dict[str, Callable[[str], Any]] = {
        "int": int,
        "int | None": int,
        "float": float,
        "bool": _parse_bool,
        "tuple[str, ...]": _parse_list,
    }
    parser = parsers.get(kind, str)
    try:
        return parser(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} has a malformed value {raw!r} (expected {kind})") from None


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _database_url(env: Mapping[str, str]) -> str:
    """DATABASE_URL, else Hiro's API's PG* variables, else the default."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    if not any(env.get(k) for k in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")):
        return DEFAULT_DATABASE_URL
    user = quote(env.get("PGUSER") or "postgres", safe="")
    password = env.get("PGPASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = env.get("PGHOST") or "127.0.0.1"
    port = env.get("PGPORT") or "5432"
    if not port.isdigit():
        raise ConfigError(f"PGPORT must be a number, got {port!r}")
    database = env.get("PGDATABASE") or "token_metadata"
    return f"postgresql+psycopg://{auth}@{host}:{port}/{database}"


def _node_rpc_url(env: Mapping[str, str]) -> str | None:
    if env.get("STACKS_NODE_RPC_URL"):
        return env["STACKS_NODE_RPC_URL"].rstrip("/")
    host, port = env.get("STACKS_NODE_RPC_HOST"), env.get("STACKS_NODE_RPC_PORT")
    if not host and not port:
        return None
    if not host or not port or not port.isdigit():
        raise ConfigError(
            "STACKS_NODE_RPC_HOST and STACKS_NODE_RPC_PORT must be set together "
            f"(got host={host!r}, port={port!r})"
        )
    return f"http://{host}:{port}"


def normalize_database_url(url: str, name: str = "DATABASE_URL") -> str:
    """Accept `postgresql://`, `postgres://` and `postgresql+psycopg://`; use psycopg 3."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if not parts.path.strip("/"):
            raise ConfigError(f"{name} must name a database, got {url!r}")
        return "postgresql+psycopg" + url[len(scheme) :]
    raise ConfigError(f"{name} must be a postgresql:// URL, got {url!r}")


def _require_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL, got {value!r}")


def _require_gateway_urls(name: str, value: str) -> None:
    """One or more http(s) base URLs, comma-separated, each on its own host (a gateway's
    health and slots are kept by host name: docs/gateways.md)."""
    bases = [part.strip() for part in value.split(",") if part.strip()]
    if not bases:
        raise ConfigError(f"{name} must list at least one http/https URL, got {value!r}")
    hosts: set[str] = set()
    for base in bases:
        try:
            parts = urlsplit(base)
            host = (parts.hostname or "").lower()
        except ValueError:
            host = ""
        if not host or parts.scheme not in ("http", "https"):
            raise ConfigError(f"{name} has {base!r}, which is not an http/https URL")
        if host in hosts:
            raise ConfigError(f"{name} lists the host {host} twice")
        hosts.add(host)


def load_settings() -> Settings:
    """Load `.env` then the environment; on error print one line naming the variable and exit."""
    from dotenv import load_dotenv

    load_dotenv(override=False)
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

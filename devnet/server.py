"""Runs the simulated node RPC and metadata host together, each in a daemon thread."""

from __future__ import annotations

from types import TracebackType

from devnet.metadata_host import MetadataHost
from devnet.node import NodeServer
from devnet.scenario import Contract, Scenario


class Devnet:
    """`with Devnet(scenario) as net:` serves on 127.0.0.1; port 0 picks free ports."""

    def __init__(self, scenario: Scenario, *, node_port: int = 0, metadata_port: int = 0) -> None:
        self._scenario = scenario
        self._node_port = node_port
        self._metadata_port = metadata_port
        self.node: NodeServer | None = None
        self.metadata_host: MetadataHost | None = None

    def start(self) -> Devnet:
        """Bind both ports (the metadata host first: the node's URIs point at it) and serve."""
        host = MetadataHost(self._scenario, port=self._metadata_port)
        try:
            node = NodeServer(self._scenario, metadata_url=host.url, port=self._node_port)
        except OSError:
            host.server_close()
            raise
        host.start()
        node.start()
        self.metadata_host, self.node = host, node
        return self

    def stop(self) -> None:
        for server in (self.node, self.metadata_host):
            if server is not None:
                server.stop()
        self.node = self.metadata_host = None

    @property
    def node_url(self) -> str:
        return self._running()[0].url

    @property
    def metadata_url(self) -> str:
        """What `{metadata}` in token URI templates resolves to."""
        return self._running()[1].url

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """Swap what both servers answer, e.g. after a test grew the chain."""
        self._scenario = scenario
        if self.node is not None and self.metadata_host is not None:
            self.node.scenario = scenario
            self.metadata_host.scenario = scenario

    def deploy(self, *contracts: Contract) -> None:
        """Make the node and metadata host know about newly deployed contracts."""
        self.scenario = self._scenario.with_contracts(*contracts)

    def _running(self) -> tuple[NodeServer, MetadataHost]:
        if self.node is None or self.metadata_host is None:
            raise RuntimeError("Devnet is not started")
        return self.node, self.metadata_host

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

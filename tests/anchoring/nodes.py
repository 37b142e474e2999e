"""Real JSON-RPC chains for tests: a Hardhat node and an anvil node (both from npm, started and
stopped here; anvil also reorgs on demand, ``anvil_reorg``, re-mining given transactions) and a TCP
proxy in front of it that can refuse connections, to take the endpoint down for a while."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

from settings import ChainSettings
from tests.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
#: Hardhat's well-known development accounts (funded on its node; worthless anywhere else).
KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)


class HardhatNode:
    """``npx hardhat node`` on a free port of 127.0.0.1."""

    def command(self) -> list[str]:
        return ["npx", "--no-install", "hardhat", "node", "--hostname", "127.0.0.1", "--port", str(self.port)]

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def rpc(self, method: str, *params: Any) -> Any:
        answer = requests.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def start(self, timeout: float = 90.0) -> None:
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command()[2]} exited with {self.process.returncode}")
            try:
                if int(self.rpc("eth_chainId"), 16) == CHAIN_ID:
                    return
            except (requests.ConnectionError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.command()[2]} not answering on {self.url} after {timeout}s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    # Chain control (Hardhat's test RPC methods).
    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", on)

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot: str) -> None:
        assert self.rpc("evm_revert", snapshot) is True

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


def chain_settings(url: str, contract: str | None = None, **overrides: Any) -> ChainSettings:
    """The settings of chain "local" on a development node at ``url``, anchoring with its first
    funded key at one confirmation; ``overrides`` replace any of them."""
    values: dict[str, Any] = {
        "name": "local",
        "rpc_url": url,
        "chain_id": CHAIN_ID,
        "contract": contract,
        "key": SecretStr(KEYS[0]),
        "confirmations": 1,
    }
    return ChainSettings(**{**values, **overrides})


@contextmanager
def hardhat_node() -> Iterator[HardhatNode]:
    node = HardhatNode(free_port())
    node.start()
    try:
        yield node
    finally:
        node.stop()


class AnvilNode(HardhatNode):
    """``anvil`` (npm ``@foundry-rs/anvil``, Foundry's node) on a free port of 127.0.0.1: the same
    development accounts and chain id as Hardhat's, the same ``evm_*`` methods, and ``anvil_reorg``
    (replace the newest blocks by new ones holding the given transactions) and ``anvil_setBalance``."""

    def command(self) -> list[str]:
        return ["npx", "--no-install", "anvil", "--host", "127.0.0.1", "--port", str(self.port), "--silent"]

    def reorg(self, depth: int, txs: list[tuple[bytes, int]]) -> None:
        """Replace the newest ``depth`` blocks: each (raw transaction, block index) is mined again
        in the new block of that index (0: the oldest replaced)."""
        self.rpc("anvil_reorg", depth, [["0x" + raw.hex(), index] for raw, index in txs])

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))


@contextmanager
def anvil_node() -> Iterator[AnvilNode]:
    node = AnvilNode(free_port())
    node.start()
    try:
        yield node
    finally:
        node.stop()


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`down` refuses and cuts connections until :meth:`up`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        server, self._server = self._server, None
        with self._lock:
            for conn in [*self._open, *([server] if server else [])]:
                _shut(conn)  # shutdown() wakes the threads blocked on the socket; close() alone does not
            self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if self._server is not server:  # went down while accepting
                _shut(client)
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                _shut(conn)


def _shut(conn: socket.socket) -> None:
    with suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()

"""Red team: a hostile or broken JSON-RPC node cannot make the anchoring service hold a huge
answer or parse one nested deep enough to exhaust the stack; it counts as unavailable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from anchoring.chain import MAX_ANSWER_BYTES, http_web3
from anchoring.errors import ChainUnavailableError
from anchoring.service import Credentials, connect
from settings import ChainSettings
from tests.anchoring.nodes import KEYS


class _Node(BaseHTTPRequestHandler):
    answer = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server: ThreadingHTTPServer) -> object:
    chain = ChainSettings(
        name="hostile", rpc_url=f"http://127.0.0.1:{server.server_address[1]}", key=SecretStr(KEYS[0]), rpc_timeout=5
    )
    return connect(chain, Credentials())


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b'{"jsonrpc":"2.0","id":0,"result":"0x' + b"0" * (MAX_ANSWER_BYTES + 10) + b'"}', "larger than"),
        (b'{"jsonrpc":"2.0","id":0,"result":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests 100001 levels"),
    ],
    ids=["huge", "deep"],
)
def test_hostile_answers_are_refused(node: ThreadingHTTPServer, answer: bytes, said: str) -> None:
    _Node.answer = answer
    client = _client(node)
    with pytest.raises(ChainUnavailableError, match=said):
        client.head()  # type: ignore[attr-defined]


def test_ordinary_answers_are_read(node: ThreadingHTTPServer) -> None:
    _Node.answer = b'{"jsonrpc":"2.0","id":0,"result":"0x2a"}'
    assert (
        http_web3(
            ChainSettings(name="x", rpc_url=f"http://127.0.0.1:{node.server_address[1]}", rpc_timeout=5)
        ).eth.block_number
        == 42
    )

"""Secrets never reach a log line, an error message or a response: API keys (however they are
sent, valid or not), the anchoring private key, the database password in its URL. Checked on
the real ``tenderproof serve`` (JSON logs, the anchoring job failing against an unreachable
chain) and on the command line's error paths."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cli import main
from settings import Settings
from tests.api.servers import ROOT, cli_server
from tests.cluster import create_key, free_port
from tests.conftest import ORIGIN, PG_ADMIN_URL
from tests.pg import scratch_database

PASSWORD = "Pw-" + secrets.token_hex(8)
ANCHOR_KEY = secrets.token_hex(32)


def _secret_forms(key: str) -> list[str]:
    """The key and its secret part (what must never be shown; the prefix may be)."""
    return [key, key.split("_")[2]]


def _assert_absent(text: str, needles: list[str], where: str) -> None:
    for needle in needles:
        assert needle.lower() not in text.lower(), f"{where} shows a secret ({needle[:6]}...)"


@pytest.mark.postgres
def test_serve_never_logs_or_answers_a_secret(tmp_path: Path) -> None:
    with scratch_database(PG_ADMIN_URL) as plain:
        url = make_url(plain).set(password=PASSWORD).render_as_string(hide_password=False)  # trust auth ignores it
        officer = create_key(url, origin=ORIGIN, name="ana")
        admin = create_key(url, origin=ORIGIN, name="root", role="admin")
        unreachable = f"http://127.0.0.1:{free_port()}"
        env = {
            "TENDERPROOF_ORIGIN": ORIGIN,
            "TENDERPROOF_ANCHOR_KEY": "0x" + ANCHOR_KEY,
            "TENDERPROOF_CHAINS": json.dumps([{"name": "l1", "rpc_url": unreachable, "chain_id": 31337}]),
            "TENDERPROOF_ANCHOR_POLL": "0.2",
        }
        log_file = tmp_path / "server.log"
        answers: list[str] = []
        with cli_server(url, log_file=log_file, env=env) as http:
            wrong = officer[:-4] + "aaaa"
            calls = [
                ("POST", "/api/v1/tenders", {"Authorization": f"Bearer {officer}"}, {"type": "tender.planned"}),
                ("POST", "/api/v1/tenders", {"X-API-Key": admin}, {"payload": "x"}),
                ("POST", "/api/v1/tenders", {"Authorization": f"Bearer {wrong}"}, {}),
                ("POST", "/api/v1/tenders", {"Authorization": f"Basic {officer}"}, {}),
                ("POST", "/api/v1/tenders", {"Authorization": f"Bearer {officer}", "X-API-Key": admin}, {}),
                ("GET", f"/api/v1/tenders?q={officer}&api_key={admin}", {}, None),
                ("GET", f"/api/v1/tenders/{officer}x/events", {"X-API-Key": wrong}, None),  # echoed to its sender only
                ("GET", "/readyz", {}, None),
                ("GET", "/metrics", {}, None),
            ]
            for method, path, headers, body in calls:
                response = http.request(method, path, headers=headers, json=body)
                assert response.status_code < 500 or path == "/readyz", response.text
                if officer not in path:
                    answers.append(response.text + json.dumps(dict(response.headers)))
            ready = http.get("/readyz")
            assert ready.status_code == 503  # the chain is down: said, without the key or the URL's password
            deadline = time.monotonic() + 90
            while "chain l1" not in log_file.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)  # the anchoring job's first round, retrying the RPC endpoint, fails and is logged
        logged = log_file.read_text()
        assert '"logger": "api.access"' in logged or '"logger":"api.access"' in logged  # the log was written
        assert "chain l1" in logged  # the anchoring job's failure was logged
        needles = [*_secret_forms(officer), *_secret_forms(admin), _secret_forms(wrong)[1], ANCHOR_KEY, PASSWORD]
        _assert_absent(logged, needles, "the server's log")
        _assert_absent("\n".join(answers), needles, "a response")


def test_command_line_errors_and_settings_hide_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(
        database_url=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/x",
        anchor_key="0x" + ANCHOR_KEY,
        keystore_password=PASSWORD,
    )
    _assert_absent(repr(settings) + str(settings), [ANCHOR_KEY], "Settings' repr")
    # an unreachable database: exit 3, the URL's password not repeated
    code = main(["--database-url", settings.database_url, "checkpoint"])
    out, err = capsys.readouterr()
    assert code == 3 and "database unreachable" in err
    _assert_absent(out + err, [PASSWORD], "`tenderproof checkpoint`")
    # `init` names the database it migrated, password hidden
    code = main(["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "init"])
    assert code == 0
    # an anchoring round against an unreachable chain, with the key in the environment
    chains = json.dumps([{"name": "l1", "rpc_url": f"http://127.0.0.1:{free_port()}", "chain_id": 31337}])
    env = {"TENDERPROOF_ANCHOR_KEY": ANCHOR_KEY, "TENDERPROOF_CHAINS": chains, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli", "--database-url", f"sqlite:///{tmp_path / 'y.db'}", "anchor"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=120)
    assert done.returncode == 3, done.stderr
    _assert_absent(done.stdout.decode() + done.stderr.decode(), [ANCHOR_KEY], "`tenderproof anchor`")
    # a malformed key is refused without being echoed
    env["TENDERPROOF_ANCHOR_KEY"] = "0x" + ANCHOR_KEY[:-2] + "zz"
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=120)
    assert done.returncode != 0
    _assert_absent(done.stdout.decode() + done.stderr.decode(), [ANCHOR_KEY[:-2]], "`tenderproof anchor` (bad key)")

"""The Host header check (DNS rebinding) and the token required beyond loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from clickstream.serve import create_app
from clickstream.serve.access import Access
from tests.serve.prometheus import free_port

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30.0


def _client(results_db: Path, access: Access, host: str) -> TestClient:
    return TestClient(create_app(results_db, access=access), base_url=f"http://{host}")


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "localhost", "[::1]:8000", "LOCALHOST."]
)
def test_loopback_accepts_loopback_names(results_db: Path, host: str) -> None:
    client = _client(results_db, Access.for_bind("127.0.0.1"), host)
    assert client.get("/api/tables").status_code == 200


@pytest.mark.parametrize("host", ["evil.example:8000", "rebind.attacker.test", "192.168.1.20:8000", "myhost"])
def test_loopback_refuses_other_host_names(results_db: Path, host: str) -> None:
    client = _client(results_db, Access.for_bind("127.0.0.1"), host)
    for path in ("/", "/api/tables", "/api/events", "/metrics", "/static/app.css"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "--allow-host" in response.json()["detail"] and "DNS rebinding" in response.json()["detail"]


def test_allow_host_adds_names(results_db: Path) -> None:
    access = Access.for_bind("127.0.0.1", ["dash.internal"])
    assert _client(results_db, access, "dash.internal:8000").get("/api/tables").status_code == 200
    assert _client(results_db, access, "other.internal").get("/api/tables").status_code == 403
    anyone = Access.for_bind("127.0.0.1", ["*"])
    assert _client(results_db, anyone, "other.internal").get("/api/tables").status_code == 200


def test_host_check_rules() -> None:
    specific = Access("10.1.2.3", frozenset(), "t", frozenset({"box"}))
    assert specific.host_allowed("10.1.2.3:8000") and specific.host_allowed("box")
    assert not specific.host_allowed("localhost")  # not listening on loopback
    assert not specific.host_allowed(None) and not specific.host_allowed("")
    wildcard = Access("0.0.0.0", frozenset(), "t", frozenset({"box", "box.lan"}))
    assert wildcard.host_allowed("box:8000") and wildcard.host_allowed("box.lan")
    assert wildcard.host_allowed("192.168.1.20:8000") and wildcard.host_allowed("[fe80::1]:8000")
    assert wildcard.host_allowed("localhost:8000")
    assert not wildcard.host_allowed("attacker.test")


def test_beyond_loopback_a_token_is_generated() -> None:
    access = Access.for_bind("0.0.0.0")
    assert access.token and len(access.token) >= 24
    assert Access.for_bind("0.0.0.0").token != access.token
    assert Access.for_bind("127.0.0.1").token is None
    assert Access.for_bind("0.0.0.0", token="mine").token == "mine"
    assert f"?token={access.token}" in access.url(8000)
    assert access.warning() and Access.for_bind("127.0.0.1").warning() is None


def test_token_once_in_the_url_then_a_cookie(results_db: Path) -> None:
    access = Access.for_bind("0.0.0.0", token="s3cret")
    client = _client(results_db, access, "192.168.1.20:8000")
    refused = client.get("/api/tables")
    assert refused.status_code == 401 and "?token=" in refused.json()["detail"]
    assert "s3cret" not in refused.text
    assert client.get("/api/tables", params={"token": "wrong"}).status_code == 401
    first = client.get("/", params={"token": "s3cret"})
    assert first.status_code == 200
    assert "HttpOnly" in first.headers["set-cookie"]
    # the client now holds the cookie: later requests need no token in the URL
    assert client.get("/api/tables").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_bearer_token_for_scripts_and_prometheus(results_db: Path) -> None:
    client = _client(results_db, Access.for_bind("0.0.0.0", token="s3cret"), "192.168.1.20")
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert "set-cookie" not in client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).headers


def test_loopback_with_a_token_requires_it(results_db: Path) -> None:
    client = _client(results_db, Access.for_bind("127.0.0.1", token="s3cret"), "localhost")
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/status", params={"token": "s3cret"}).status_code == 200


def test_dashboard_beyond_loopback_prints_its_token_url(results_db: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "clickstream.cli", "dashboard", "--results", str(results_db)]
    process = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline() + process.stderr.readline()
        match = re.search(r"\?token=([\w-]+)", banner)
        assert match, banner
        assert "anyone who can reach this machine" in banner
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                refused = httpx.get(f"{base}/api/tables", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        assert refused.status_code == 401
        with httpx.Client(base_url=base, timeout=5) as browser:
            assert browser.get("/", params={"token": match.group(1)}).status_code == 200
            assert browser.get("/api/tables").status_code == 200  # by the cookie
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

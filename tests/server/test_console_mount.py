"""The console's place in the server: ``/console`` serves its files with a strict Content-Security-Policy, ``serve
--no-console`` (or ``console = false``) leaves it out, and ``GET /v1/whoami`` tells a key its own binding. A real
server on loopback; the browser tests of the console itself are in tests/console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memory_plugin.cli import build_parser
from memory_plugin.errors import InvalidArgumentError
from memory_plugin.server.console import ASSETS
from memory_plugin.server.serve import load_config
from tests.server_harness import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from tests.conftest import make_fake_embedder

    with running_server(tmp_path_factory.mktemp("console-mount"), make_fake_embedder()) as server:
        yield server


def test_the_console_is_served_with_a_strict_content_security_policy(server: RunningServer) -> None:
    redirect = httpx.get(f"{server.url}/console")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/console/"
    page = httpx.get(f"{server.url}/console/")
    assert page.status_code == 200 and '<script type="module" src="app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(f"{server.url}/console/views/memory.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for outside in ("/console/%2e%2e/keys.db", "/console/..%2fkeys.db"):  # nothing outside the assets
        assert httpx.get(f"{server.url}{outside}").status_code == 404


def test_every_asset_is_local(server: RunningServer) -> None:
    """No CDN: nothing the console loads names another origin."""
    for path in ASSETS.rglob("*"):
        if path.is_file():
            text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # SVG's namespace: a name, not a fetch
            assert "http://" not in text and "https://" not in text, path


def test_whoami_tells_a_key_its_binding_and_nothing_else(server: RunningServer) -> None:
    key_id, secret = server.new_key("app-001", ["u1", "u2"], read_only=True)
    answer = httpx.get(f"{server.url}/v1/whoami", headers={"Authorization": f"Bearer {key_id}.{secret}"})
    assert answer.status_code == 200
    assert answer.json() == {
        "key_id": key_id, "app_id": "app-001", "tenant_ids": ["u1", "u2"], "read_only": True, "admin": False
    }  # fmt: skip
    assert secret not in answer.text
    refused = httpx.get(f"{server.url}/v1/whoami")
    assert refused.status_code == 401 and refused.json()["code"] == "AuthenticationError"


def test_no_console_leaves_it_out(tmp_path: Path) -> None:
    from tests.conftest import make_fake_embedder

    with running_server(tmp_path, make_fake_embedder(), console=False) as server:
        assert httpx.get(f"{server.url}/console/").status_code == 404
        assert httpx.get(f"{server.url}/console").status_code == 404
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_the_console_setting_comes_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    assert load_config(tmp_path).console is True
    file = tmp_path / "server.toml"
    file.write_text("[server]\nconsole = false\n")
    assert load_config(tmp_path, file).console is False
    assert load_config(tmp_path, None, console=False).console is False
    assert build_parser().parse_args(["serve", "--no-console"]).no_console is True
    file.write_text('[server]\nconsole = "no"\n')
    with pytest.raises(InvalidArgumentError, match=r"server\.console: must be true or false"):
        load_config(tmp_path, file)

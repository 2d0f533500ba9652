"""`python -m rcetl.sandbox serve --json` by hand, driven with curl as docs/sandbox.md shows;
the typer group through the plugin hook; the embedded-server hook."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import typer
from typer.testing import CliRunner

from rcetl.sandbox import plugin

from ..services import unavailable


def test_serve_subprocess_and_curl():
    if not shutil.which("curl"):
        unavailable("curl is not installed (Debian: apt-get install -y curl)")
    proc = subprocess.Popen([sys.executable, "-m", "rcetl.sandbox", "serve", "--port", "0", "--size", "tiny", "--json"],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert {"server", "media_server", "client_id", "client_secret", "jwt", "accounts", "time_scale", "admin"} <= set(info)
        token = json.loads(subprocess.run(
            ["curl", "-s", "-u", f"{info['client_id']}:{info['client_secret']}", f"{info['server']}/restapi/oauth/token",
             "-d", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", "-d", f"assertion={info['jwt']}"],
            capture_output=True, text=True, check=True).stdout)["access_token"]
        out = subprocess.run(["curl", "-s", "-i", "-H", f"Authorization: Bearer {token}",
                              f"{info['server']}/restapi/v1.0/account/~/extension"],
                             capture_output=True, text=True, check=True).stdout
        assert "X-Rate-Limit-Group: medium" in out and '"records"' in out
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_hook_adds_the_group(tmp_path):
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """rcetl"""

    plugin.rcetl_cli(app)
    out = tmp_path / "truth.json"
    result = CliRunner().invoke(app, ["sandbox", "export", "--size", "tiny", "--seed", "4", "--anchor", "2026-01-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    truth = json.loads(out.read_text())
    assert truth["seed"] == 4 and truth["anchor"] == "2026-01-01T00:00:00Z" and truth["accounts"][0]["call_log"]


def test_embedded_server_hook():
    import requests

    (spec,) = plugin.rcetl_embedded_servers()
    assert spec.name == "sandbox"
    with spec.start({"seed": 2, "size": "tiny", "accounts": 2, "time_scale": 10.0}) as info:
        assert len(info["accounts"]) == 2 and info["time_scale"] == 10.0
        assert requests.get(f"{info['admin']}/info").json()["client_id"] == info["client_id"]


def test_serve_refuses_a_bad_limits_option_with_exit_2():
    from rcetl.sandbox.cli import app

    result = CliRunner().invoke(app, ["serve", "--port", "0", "--size", "tiny", "--limits", "heavy=five"])
    assert result.exit_code == 2 and "bad limit for Heavy" in result.output


def test_embedded_server_takes_plan_and_header_options():
    """A pipeline's ``sandbox:`` block carries the same plan and header options as the CLI."""
    import requests

    (spec,) = plugin.rcetl_embedded_servers()
    with spec.start({"size": "tiny", "port": 0, "media_port": 0, "plan": {"heavy": 5}, "rate_headers": True}) as info:
        assert info["plan"]["Heavy"] == 5 and info["rate_headers"] is True
        token = requests.post(f"{info['server']}/restapi/oauth/token", auth=(info["client_id"], info["client_secret"]),
                              data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                    "assertion": info["jwt"]}).json()["access_token"]
        r = requests.get(f"{info['server']}/restapi/v1.0/account/~/call-log", headers={"Authorization": f"Bearer {token}"})
        assert r.headers["X-Rate-Limit-Limit"] == "5" and r.headers["X-Rate-Limit-Group"] == "heavy"
    with spec.start({"size": "tiny", "port": 0, "media_port": 0, "rate_headers": False}) as info:
        assert info["rate_headers"] is False

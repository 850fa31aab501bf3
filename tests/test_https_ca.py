"""The local certificate authority `app --serve` asks a phone to trust cannot be turned against it: name constraints
keep it to the LAN and this machine (a certificate its key signs for another site fails verification), its key is
its owner's only, an unconstrained CA from an earlier version is refused, `--forget-ca` deletes it, and `--serve` says
where it listens."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist_edge import cli
from fmnist_edge.browser.https import certificates
from fmnist_edge.errors import FmnistEdgeError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)


def leaf(folder: Path, name: str, san: str) -> Path:
    """A server certificate for `san`, signed with the CA's own key, as whoever copied the key could make one."""
    (folder / f"{name}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    assert openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                   f"/CN={name}", cwd=folder).returncode == 0
    assert openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
                   f"{name}.crt", "-days", "30", "-extfile", f"{name}.ext", cwd=folder).returncode == 0
    return folder / f"{name}.crt"


def test_a_certificate_the_ca_signs_for_another_site_fails_verification_and_one_for_the_lan_passes(tmp_path):
    folder = tmp_path / "tls"
    ca, server, _ = certificates(["192.168.1.20", "203.0.113.7"], folder)
    text = openssl("x509", "-in", str(ca), "-noout", "-text", cwd=folder).stdout
    assert "X509v3 Name Constraints: critical" in text and "IP:192.168.0.0/255.255.0.0" in text
    assert openssl("verify", "-CAfile", "ca.crt", str(server), cwd=folder).returncode == 0  # the app's own
    # a public address this machine has is left out of the server certificate (the phone would reject it)
    assert "203.0.113.7" not in openssl("x509", "-in", str(server), "-noout", "-ext", "subjectAltName", cwd=folder).stdout
    for name, san in (("bank", "DNS:example.com"), ("public-ip", "IP:8.8.8.8")):
        result = openssl("verify", "-CAfile", "ca.crt", str(leaf(folder, name, san)), cwd=folder)
        assert result.returncode != 0 and "permitted subtree violation" in result.stderr, result.stderr
    for name, san in (("lan", "IP:10.1.2.3"), ("mdns", "DNS:pi.local")):
        assert openssl("verify", "-CAfile", "ca.crt", str(leaf(folder, name, san)), cwd=folder).returncode == 0


def test_the_ca_key_is_its_owners_only_and_a_readable_one_is_refused(tmp_path):
    folder = tmp_path / "tls"
    certificates([], folder)
    assert (folder.stat().st_mode & 0o777, (folder / "ca.key").stat().st_mode & 0o777) == (0o700, 0o600)
    assert (folder / "server.key").stat().st_mode & 0o077 == 0
    (folder / "ca.key").chmod(0o644)
    with pytest.raises(FmnistEdgeError, match=r"accessible to other users \(mode 644\).*chmod 600"):
        certificates([], folder)
    (folder / "ca.key").chmod(0o600)
    folder.chmod(0o755)
    with pytest.raises(FmnistEdgeError, match="chmod 700"):
        certificates([], folder)


def test_an_unconstrained_ca_from_an_earlier_version_is_refused_with_the_way_out(tmp_path):
    folder = tmp_path / "tls"
    folder.mkdir(mode=0o700)
    assert openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
                   "-subj", "/CN=old", "-addext", "basicConstraints=critical,CA:TRUE", cwd=folder).returncode == 0
    (folder / "ca.key").chmod(0o600)
    with pytest.raises(FmnistEdgeError, match="without name constraints.*--forget-ca"):
        certificates([], folder)


def test_forget_ca_deletes_it_and_says_how_to_remove_it_from_a_phone(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_EDGE_TLS_DIR", str(tmp_path / "tls"))
    certificates([], tmp_path / "tls")
    result = CliRunner().invoke(cli.app, ["app", "--forget-ca"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "tls").exists() and "Trusted credentials" in result.output and "Remove Profile" in result.output


def test_serve_says_where_it_listens(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "release.json").write_text("{}")  # an app directory already built: --serve serves it as it is
    env = {**os.environ, "FMNIST_EDGE_TLS_DIR": str(tmp_path / "tls")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "fmnist-edge"), "app", "--out", str(app), "--serve",
                             "--bind", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        end, out = time.monotonic() + 60, ""
        while "Serving over HTTPS" not in out and time.monotonic() < end:
            out += proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "Listening on 127.0.0.1 only, port" in out and "https://127.0.0.1:" in out, out

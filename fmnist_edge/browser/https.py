"""Serving the web app to a real phone (`fmnist-edge app --serve`). A phone reaches a laptop by its LAN address, and
over plain HTTP there a browser gives the page no service worker and no install: it is not a secure origin. So
the app is served over HTTPS with a certificate made here: a local certificate authority (kept in
~/.config/fmnist-edge/tls, made once, installed once on the phone) signs a server certificate for this machine's
current addresses. The CA certificate is offered at /fmnist-edge-ca.crt for the phone to download. Over USB,
`adb reverse tcp:PORT tcp:PORT` makes the phone's localhost this machine, which is secure without any certificate.

The certificates are made with the `openssl` command (Debian's openssl package, on every Raspberry Pi OS too).

A phone that trusts the CA trusts whatever its key signs, so the CA is made unable to vouch for anything but what it
serves: critical X.509 name constraints limit it to the private IPv4 ranges, loopback and link-local addresses,
`localhost` and `.local` names (a certificate it signs for a bank's name fails verification on the phone), and its
key is kept readable by its owner only (0600 in a 0700 folder), checked on every start. `fmnist-edge app
--forget-ca` deletes it.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import FmnistEdgeError, MissingExtraError
from .static_server import AppHandler

CA_PATH = "/fmnist-edge-ca.crt"  # where the phone downloads the CA certificate


# What the CA may sign for (RFC 5280 name constraints; IP ranges as address/netmask): the LAN and this machine.
PERMITTED_NETWORKS = ("10.0.0.0/255.0.0.0", "172.16.0.0/255.240.0.0", "192.168.0.0/255.255.0.0",
                      "127.0.0.0/255.0.0.0", "169.254.0.0/255.255.0.0")
PERMITTED_NAMES = ("localhost", ".local")
NAME_CONSTRAINTS = "nameConstraints=critical," + ",".join(
    [*(f"permitted;IP:{n}" for n in PERMITTED_NETWORKS), *(f"permitted;DNS:{d}" for d in PERMITTED_NAMES)])


def tls_dir() -> Path:
    return Path(os.environ.get("FMNIST_EDGE_TLS_DIR", Path.home() / ".config" / "fmnist-edge" / "tls"))


def lan_addresses() -> list[str]:
    """This machine's addresses a phone on the same network could use (the default route's, and the host name's)."""
    found = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # UDP: no packet is sent; the OS picks the outgoing interface
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    return sorted({a for a in found if not a.startswith("127.")})


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if not exe:
        raise MissingExtraError("Serving over HTTPS needs the openssl command: apt-get install openssl.")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise FmnistEdgeError(f"openssl {args[0]} failed: {proc.stderr.strip()[-400:]}")


def in_permitted(address: str) -> bool:
    """Whether the CA's name constraints let it sign for this IPv4 address."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and any(ip in ipaddress.ip_network(n) for n in PERMITTED_NETWORKS)


def _check_private(folder: Path) -> None:
    """Refuse a CA key (or its folder) that other users can read or write: whoever copies it can impersonate this
    machine to the phone."""
    for path, mode in ((folder, 0o700), (folder / "ca.key", 0o600)):
        if path.exists() and path.stat().st_mode & 0o077:
            raise FmnistEdgeError(
                f"{path} is accessible to other users (mode {path.stat().st_mode & 0o777:o}); the certificate authority's "
                f"key must be its owner's only. Fix it with: chmod {mode:o} {path} (or delete the CA with "
                "`fmnist-edge app --forget-ca` and remove it from the phone).")


def _has_constraints(ca: Path, folder: Path) -> bool:
    exe = shutil.which("openssl")
    proc = subprocess.run([exe, "x509", "-in", str(ca), "-noout", "-ext", "nameConstraints"], cwd=folder,
                          capture_output=True, text=True)
    return proc.returncode == 0 and "Permitted" in proc.stdout


def certificates(addresses: list[str], folder: Path | None = None) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): the CA made once and kept (name-constrained, its key private),
    the server certificate made for `addresses` (plus localhost) on every call."""
    folder = folder or tls_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(folder)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    if not (ca.is_file() and ca_key.is_file()):
        old_umask = os.umask(0o077)  # the key is written 0600 from its first byte
        try:
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days",
                     "825", "-subj", "/CN=fmnist-edge local CA", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", NAME_CONSTRAINTS, cwd=folder)
        finally:
            os.umask(old_umask)
        ca.chmod(0o644)
    elif not _has_constraints(ca, folder):
        raise FmnistEdgeError(
            f"{ca} was made by an earlier fmnist-edge without name constraints: a phone that trusts it would trust any "
            "site its key signs for. Delete it with `fmnist-edge app --forget-ca`, remove it from the phone, and serve "
            "again (a constrained one is made).")
    addresses = [a for a in addresses if in_permitted(a)]
    names = ",".join(["DNS:localhost", "IP:127.0.0.1", *(f"IP:{a}" for a in addresses)])
    (folder / "server.ext").write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                                       "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    old_umask = os.umask(0o077)
    try:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=fmnist-edge app", cwd=folder)
    finally:
        os.umask(old_umask)
    # 397 days: the longest validity phones accept for a server certificate.
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "397", "-extfile", "server.ext", cwd=folder)
    return ca, folder / "server.crt", folder / "server.key"


def forget_ca(folder: Path | None = None) -> list[Path]:
    """Delete the certificate authority and the certificates it signed; returns what was deleted."""
    folder = folder or tls_dir()
    gone = [f for f in sorted(folder.glob("*")) if f.is_file()] if folder.is_dir() else []
    for f in gone:
        f.unlink()
    if folder.is_dir():
        folder.rmdir()
    return gone


class _Handler(AppHandler):
    ca_file: Path

    def translate_path(self, path):
        if path.split("?", 1)[0] == CA_PATH:
            return str(self.ca_file)
        return super().translate_path(path)

    def guess_type(self, path):
        return "application/x-x509-ca-cert" if str(path) == str(self.ca_file) else super().guess_type(path)


@contextmanager
def serve_https(directory: Path, host: str = "0.0.0.0", port: int = 8443, folder: Path | None = None):
    """Serve `directory` over HTTPS on host:port until the block ends; yields (the URLs to open, the CA certificate)."""
    addresses = lan_addresses()
    ca, cert, key = certificates(addresses, folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handler = type("Handler", (_Handler,), {"ca_file": ca})
    try:
        server = http.server.ThreadingHTTPServer((host, port), functools.partial(handler, directory=str(directory)))
    except OSError as exc:
        raise FmnistEdgeError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port.") from None
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    hosts = ["127.0.0.1"] if host.startswith("127.") else [*(a for a in addresses if in_permitted(a)), "localhost"]
    try:
        yield [f"https://{h}:{port}/" for h in hosts], ca
    finally:
        server.shutdown()
        server.server_close()

"""Test certificates made with openssl: a CA and a server certificate for 127.0.0.1, PEM, keys in PKCS#8 (what the
Java clients' and the broker's `ssl.*store.type=PEM` read, and Python's `ssl`)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCertificates:
    ca: Path  # the CA certificate: the clients' truststore
    server_keystore: Path  # the broker's certificate chain and PKCS#8 key in one PEM file


def _openssl(*args: str, cwd: Path) -> None:
    run = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {run.stderr[-2000:]}")


def make_certificates(folder: Path, *, days: int = 2) -> TestCertificates:
    """A fresh CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) signed by it, in `folder`."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not on PATH; the SASL_SSL test makes its certificates with it")
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", str(days), "-subj", "/CN=meterstream test CA", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", str(days), "-extfile", "san.ext", cwd=folder)
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.pk8", cwd=folder)
    keystore = folder / "server-keystore.pem"
    keystore.write_text((folder / "server.pem").read_text() + (folder / "server.pk8").read_text())
    return TestCertificates(ca=folder / "ca.pem", server_keystore=keystore)

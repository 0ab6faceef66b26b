"""Test certificates made with openssl: a CA and a server certificate for 127.0.0.1, PEM, keys in PKCS#8 (what the
Java clients' and the broker's `ssl.*store.type=PEM` read, and Python's `ssl`)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate: the clients' truststore (and the broker's, for client certificates)
    server_keystore: Path  # the broker's certificate chain and PKCS#8 key in one PEM file
    client_keystore: Path  # a client's, for mutual TLS


def _openssl(*args: str, cwd: Path) -> None:
    run = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {run.stderr[-2000:]}")


def make_certificates(folder: Path, *, days: int = 2) -> Certificates:
    """A fresh CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and a client certificate signed by it, in
    `folder`."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not on PATH; the SASL_SSL test makes its certificates with it")
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", str(days), "-subj", "/CN=meterstream test CA", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    keystores = {}
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=meterstream-billing")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", str(days), "-extfile", "san.ext", cwd=folder)
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", f"{name}.key", "-out", f"{name}.pk8", cwd=folder)
        keystores[name] = folder / f"{name}-keystore.pem"
        keystores[name].write_text((folder / f"{name}.pem").read_text() + (folder / f"{name}.pk8").read_text())
    return Certificates(ca=folder / "ca.pem", server_keystore=keystores["server"],
                            client_keystore=keystores["client"])

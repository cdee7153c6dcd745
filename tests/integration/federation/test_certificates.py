"""A node's TLS certificate expiry is read through the outbound guard's address checks, and its hoster
is warned once per certificate 14 days ahead (``certificates.CERT_WARNING_DAYS``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import select

from portail.config import Settings
from portail.db import utcnow
from portail.federation import certificates
from portail.federation.models import Instance
from tests.conftest import outbox
from tests.federation_factories import add_hoster, add_instance, in_db


def self_signed(tmp_path: Path, days: int) -> tuple[Path, Path, dt.datetime]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    not_after = (utcnow() + dt.timedelta(days=days)).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(utcnow() - dt.timedelta(days=1))
        .not_valid_after(not_after).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, not_after


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, dt.datetime]]:
    """A loopback TLS listener presenting a certificate that expires in 10 days."""
    cert_path, key_path, not_after = self_signed(tmp_path, 10)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, not_after
    stop.set()
    thread.join(2)
    listener.close()


def test_the_certificate_expiry_is_read_and_the_hoster_warned_once(
    settings: Settings, tls_server: tuple[int, dt.datetime]
) -> None:
    port, not_after = tls_server
    url = f"https://127.0.0.1:{port}"
    found = asyncio.run(certificates.expiry(settings, url))
    assert found == not_after
    assert asyncio.run(certificates.expiry(settings, "http://127.0.0.1:1")) is None  # not https
    guarded = settings.replace(allow_private_addresses=False)
    assert asyncio.run(certificates.expiry(guarded, url)) is None  # loopback refused by the guard

    add_hoster(settings, "coop")
    add_instance(settings, "nuage", hoster="coop", base_url=url)
    node_id = in_db(settings, lambda s: s.exec(select(Instance)).one().id)
    assert in_db(settings, lambda s: certificates.record_expiry(s, settings, node_id, found))
    assert not in_db(settings, lambda s: certificates.record_expiry(s, settings, node_id, found))  # once
    warned = [m for m in outbox(settings) if "Certificat TLS" in str(m["Subject"])]
    assert [str(m["To"]) for m in warned] == ["contact@coop.example"]
    later = utcnow() + dt.timedelta(days=90)
    assert not in_db(settings, lambda s: certificates.record_expiry(s, settings, node_id, later))  # renewed
    row = in_db(settings, lambda s: s.exec(select(Instance)).one())
    assert row.extra["tls_expires_at"] == later.isoformat()

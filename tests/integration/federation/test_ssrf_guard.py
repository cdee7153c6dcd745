"""The SSRF guard (``portail.federation.verification``) against real local servers and against hosts
that resolve to forbidden address ranges. ``allow_private_addresses`` is False unless a test needs to
reach the loopback stub server, which it then allows explicitly."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portail.config import Settings
from portail.federation import verification
from portail.federation.verification import Refused
from tests.conftest import make_settings
from tests.stub_server import StubServer


@pytest.fixture
def strict(tmp_path: Path) -> Settings:
    """What production uses: https only, no private addresses."""
    return make_settings(tmp_path, "sqlite://", allow_http_instances=False, allow_private_addresses=False)


@pytest.fixture
def http_public(tmp_path: Path) -> Settings:
    """http allowed (to reach test servers by URL) but private addresses still refused."""
    return make_settings(tmp_path, "sqlite://", allow_http_instances=True, allow_private_addresses=False)


@pytest.fixture
def loopback_ok(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        "sqlite://",
        allow_http_instances=True,
        allow_private_addresses=True,
        outbound_timeout_seconds=1.0,
        outbound_max_bytes=10_000,
    )


def refusal(settings: Settings, url: str) -> Refused:
    with pytest.raises(Refused) as caught:
        asyncio.run(verification.fetch(settings, url))
    return caught.value


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.0.0.1/", "address-private"),
        ("http://192.168.1.10:8080/x", "address-private"),
        ("http://172.16.5.4/", "address-private"),
        ("http://100.64.0.1/", "address-private"),
        ("http://127.0.0.1/", "address-loopback"),
        ("http://[::1]/", "address-loopback"),
        ("http://localhost/", "address-loopback"),
        ("http://169.254.169.254/latest/meta-data/", "address-metadata"),
        ("http://[fd00:ec2::254]/", "address-metadata"),
        ("http://169.254.10.1/", "address-link-local"),
        ("http://[fe80::1]/", "address-link-local"),
        ("http://[fd12:3456::1]/", "address-private"),
        ("http://[::ffff:10.0.0.1]/", "address-private"),
        ("http://[::ffff:127.0.0.1]/", "address-loopback"),
        ("http://[2002:a00:1::1]/", "address-private"),
        ("http://0.0.0.0/", "address-reserved"),
        ("http://224.0.0.1/", "address-reserved"),
        ("http://240.0.0.1/", "address-reserved"),
    ],
)
def test_guard_refuses_hosts_resolving_to_forbidden_ranges(http_public: Settings, url: str, code: str) -> None:
    assert refusal(http_public, url).code == code


def test_metadata_address_is_refused_even_when_private_addresses_are_allowed(loopback_ok: Settings) -> None:
    assert refusal(loopback_ok, "http://169.254.169.254/").code == "address-metadata"
    assert refusal(loopback_ok, "http://[fd00:ec2::254]/").code == "address-metadata"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.org/", "scheme"),
        ("ftp://example.org/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.org/", "scheme"),
        ("https://user:secret@example.org/", "credentials"),
        ("https://user@example.org/", "credentials"),
        ("https://example.org/#fragment", "fragment"),
        ("https://example.org:0/", "invalid"),
        ("https:///nohost", "invalid"),
        ("https://exa mple.org/", "invalid"),
        ("https://example.org:99999/", "invalid"),
    ],
)
def test_guard_refuses_bad_url_syntax_before_any_connection(strict: Settings, url: str, code: str) -> None:
    assert refusal(strict, url).code == code


def test_a_name_that_does_not_resolve_is_refused_with_a_clear_message(strict: Settings) -> None:
    refused = refusal(strict, "https://nonexistent.invalid/")
    assert refused.code == "dns"
    assert "nonexistent.invalid" in str(refused)


def test_loopback_is_reachable_only_when_the_setting_allows_it(
    http_public: Settings, loopback_ok: Settings, stub_server: StubServer
) -> None:
    stub_server.route("/hello", "bonjour")
    assert refusal(http_public, f"{stub_server.url}/hello").code == "address-loopback"
    fetched = asyncio.run(verification.fetch(loopback_ok, f"{stub_server.url}/hello"))
    assert fetched.status == 200
    assert fetched.body == b"bonjour"


def test_guard_connects_to_the_checked_address_and_keeps_the_host_name(
    loopback_ok: Settings, stub_server: StubServer
) -> None:
    """The request goes to the resolved IP; the Host header still names the host (no second lookup)."""
    stub_server.route("/who", "ok")
    asyncio.run(verification.fetch(loopback_ok, f"http://localhost:{stub_server.port}/who"))
    method, path, headers = stub_server.hits[-1]
    assert (method, path) == ("GET", "/who")
    assert headers["Host"] == f"localhost:{stub_server.port}"


def test_guard_follows_at_most_three_redirects(loopback_ok: Settings, stub_server: StubServer) -> None:
    for n in range(1, 5):
        stub_server.route(f"/r{n}", status=302, location=f"/r{n + 1}")
    stub_server.route("/r5", "end")
    stub_server.route("/ok1", status=301, location="/ok2")
    stub_server.route("/ok2", status=307, location=f"{stub_server.url}/ok3")
    stub_server.route("/ok3", status=308, location="/ok4")
    stub_server.route("/ok4", "arrived")
    assert asyncio.run(verification.fetch(loopback_ok, f"{stub_server.url}/ok1")).body == b"arrived"
    assert refusal(loopback_ok, f"{stub_server.url}/r1").code == "redirects"


def test_each_redirect_target_is_checked_again(http_public: Settings, tmp_path: Path) -> None:
    """A public-looking first hop cannot bounce Portail to a private address: the stub is reached only
    because loopback is allowed here, and its redirect to the metadata address is refused."""
    server = StubServer().start()
    try:
        settings = make_settings(tmp_path, "sqlite://", allow_http_instances=True, allow_private_addresses=True)
        server.route("/bounce", status=302, location="http://169.254.169.254/latest/meta-data/")
        server.route("/bounce-scheme", status=302, location="file:///etc/passwd")
        server.route("/bounce-creds", status=302, location="http://user:pw@127.0.0.1/")
        assert refusal(settings, f"{server.url}/bounce").code == "address-metadata"
        assert refusal(settings, f"{server.url}/bounce-scheme").code == "scheme"
        assert refusal(settings, f"{server.url}/bounce-creds").code == "credentials"
    finally:
        server.stop()


def test_oversized_answers_are_cut_at_the_byte_cap(loopback_ok: Settings, stub_server: StubServer) -> None:
    stub_server.route("/declared", b"y" * 20_000)
    stub_server.route("/streamed", size=50_000_000)
    assert refusal(loopback_ok, f"{stub_server.url}/declared").code == "too-large"
    assert refusal(loopback_ok, f"{stub_server.url}/streamed").code == "too-large"


def test_slow_answers_time_out(loopback_ok: Settings, stub_server: StubServer) -> None:
    stub_server.route("/slow", "late", delay=3)
    assert refusal(loopback_ok, f"{stub_server.url}/slow").code == "timeout"


def test_a_dripping_answer_cannot_outlast_the_total_budget(loopback_ok: Settings, stub_server: StubServer) -> None:
    """Each byte arrives before the read timeout, but the whole exchange is bounded."""
    stub_server.route("/drip", "x" * 100, drip=0.1)
    assert refusal(loopback_ok, f"{stub_server.url}/drip").code == "timeout"


def test_a_server_that_hangs_up_is_reported_unreachable(loopback_ok: Settings, stub_server: StubServer) -> None:
    stub_server.route("/gone", hang_up=True)
    assert refusal(loopback_ok, f"{stub_server.url}/gone").code == "unreachable"


def test_a_closed_port_is_reported_unreachable(loopback_ok: Settings) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert refusal(loopback_ok, f"http://127.0.0.1:{port}/").code == "unreachable"


def test_every_forbidden_range_is_classified() -> None:
    problem = verification.address_problem
    assert problem(ipaddress.ip_address("93.184.216.34"), allow_private=False) is None
    assert problem(ipaddress.ip_address("2606:4700::1111"), allow_private=False) is None
    assert problem(ipaddress.ip_address("64:ff9b::a00:1"), allow_private=False) == "private"
    assert problem(ipaddress.ip_address("64:ff9b::5db8:d822"), allow_private=False) is None
    assert problem(ipaddress.ip_address("192.0.2.1"), allow_private=False) == "private"
    assert problem(ipaddress.ip_address("10.1.2.3"), allow_private=True) is None
    assert problem(ipaddress.ip_address("224.0.0.1"), allow_private=True) == "reserved"


# ---------------------------------------------------------------- TLS with a pinned address


@pytest.fixture
def https_localhost(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``localhost``, and a client context
    trusting that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = StubServer()
    server.route("/", "tls ok")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    server.httpd.socket = server_context.wrap_socket(server.httpd.socket, server_side=True)
    server.start()
    client_context = ssl.create_default_context(cafile=str(cert_path))
    yield server.port, client_context
    server.stop()


def test_a_pinned_connection_still_checks_the_certificate_against_the_host_name(
    loopback_ok: Settings, https_localhost: tuple[int, ssl.SSLContext]
) -> None:
    """The guard connects to 127.0.0.1 but sends SNI ``localhost`` and verifies the certificate for
    ``localhost``; asking for the bare address (which the certificate does not name) fails."""
    port, trust = https_localhost

    async def get(url: str) -> verification.Fetched:
        async with verification.client(loopback_ok, verify=trust) as http:
            return await verification.fetch(loopback_ok, url, http=http)

    assert asyncio.run(get(f"https://localhost:{port}/")).body == b"tls ok"
    with pytest.raises(Refused) as caught:
        asyncio.run(get(f"https://127.0.0.1:{port}/"))
    assert caught.value.code == "unreachable"
    with pytest.raises(Refused):  # the system's authorities do not trust this certificate
        asyncio.run(verification.fetch(loopback_ok, f"https://localhost:{port}/"))

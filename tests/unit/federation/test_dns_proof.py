"""The DNS TXT proof (portail/federation/dns_proof.py): where the record goes, how a record is read,
and every way a DNS answer can fail, against a real DNS server on loopback (tests/dns_server.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from portail.config import ConfigError, Settings, load_settings
from portail.federation import dns_proof, proof
from portail.outbound import Refused
from tests.dns_server import LoopbackDNS, free_udp_port

TOKEN = "portail-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NAME = "_portail-challenge.node.test"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    yield server
    server.stop()


@pytest.fixture
def zone(dns_server: LoopbackDNS) -> LoopbackDNS:
    dns_server.clear()
    return dns_server


def _settings(zone: LoopbackDNS, timeout: float = 2.0) -> Settings:
    return Settings(dns_resolvers=zone.resolvers, dns_timeout_seconds=timeout)


def _check(zone: LoopbackDNS, base_url: str = "https://node.test", token: str = TOKEN, timeout: float = 2.0) -> None:
    asyncio.run(dns_proof.check(_settings(zone, timeout), base_url, token))


def _refused(zone: LoopbackDNS, base_url: str = "https://node.test", timeout: float = 2.0) -> Refused:
    with pytest.raises(Refused) as caught:
        _check(zone, base_url, timeout=timeout)
    return caught.value


# ---------------------------------------------------------------- where the record goes


def test_record_name_is_under_the_base_urls_host_without_port_path_or_trailing_dot() -> None:
    name = dns_proof.record_name("https://Nuage.Example.org.:8443/nextcloud")
    assert name.ascii == "_portail-challenge.nuage.example.org"
    assert name.zone_line(TOKEN) == f'_portail-challenge.nuage.example.org. 300 IN TXT "{TOKEN}"'


def test_record_name_of_an_international_host_is_its_idna_form() -> None:
    name = dns_proof.record_name("https://café.example")
    assert name.ascii == "_portail-challenge.xn--caf-dma.example"
    assert name.unicode == "_portail-challenge.café.example"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://192.0.2.10", "dns-ip"),
        ("https://[2001:db8::1]:8443", "dns-ip"),
        ("https://xn--zz.example", "dns-idna"),
        ("https://" + "a" * 64 + ".example", "dns-name"),
        ("https://" + ".".join(["abcdefghij"] * 24) + ".example", "dns-name"),
    ],
)
def test_hosts_that_cannot_carry_a_txt_record_are_refused_with_a_reason(url: str, code: str) -> None:
    with pytest.raises(Refused) as caught:
        dns_proof.record_name(url)
    assert caught.value.code == code


# ---------------------------------------------------------------- reading records


def test_a_record_split_in_character_strings_is_read_joined_and_trimmed() -> None:
    assert dns_proof.record_text([b" portail-abc", b"def "]) == "portail-abcdef"


def test_judge_accepts_the_token_among_other_records() -> None:
    dns_proof.judge(NAME, TOKEN, ["v=spf1 -all", TOKEN])


@pytest.mark.parametrize(
    ("records", "code", "fragment"),
    [
        ([""], "dns-empty", "vide"),
        (["portail-other"], "dns-mismatch", "ne correspond pas"),
        (["portail-a", "portail-b"], "dns-mismatch", "2 enregistrements"),
        ([TOKEN] * 21, "dns-too-large", "trop grande"),
        (["x" * 5000], "dns-too-large", "trop grande"),
    ],
)
def test_judge_refuses_with_a_clear_reason(records: list[str], code: str, fragment: str) -> None:
    with pytest.raises(Refused) as caught:
        dns_proof.judge(NAME, TOKEN, records)
    assert caught.value.code == code
    assert fragment in caught.value.message % caught.value.params


# ---------------------------------------------------------------- against a DNS server


def test_the_token_published_at_the_name_proves_control(zone: LoopbackDNS) -> None:
    zone.txt(NAME, TOKEN)
    _check(zone)
    assert (NAME, "TXT") in zone.questions


def test_a_token_split_over_two_strings_and_other_records_still_prove(zone: LoopbackDNS) -> None:
    zone.txt(NAME, "google-site-verification=xyz", [TOKEN[:20], TOKEN[20:]])
    _check(zone)


def test_an_international_host_is_asked_under_its_idna_name(zone: LoopbackDNS) -> None:
    zone.txt("_portail-challenge.xn--caf-dma.example", TOKEN)
    _check(zone, "https://café.example")


def test_nxdomain_says_the_name_does_not_exist(zone: LoopbackDNS) -> None:
    refused = _refused(zone)
    assert refused.code == "dns-nxdomain"
    assert NAME in refused.message % refused.params


def test_a_name_without_txt_records_is_refused(zone: LoopbackDNS) -> None:
    zone.exists(NAME)
    assert _refused(zone).code == "dns-no-txt"


def test_an_empty_record_is_refused(zone: LoopbackDNS) -> None:
    zone.txt(NAME, "")
    assert _refused(zone).code == "dns-empty"


def test_a_wrong_token_is_refused(zone: LoopbackDNS) -> None:
    zone.txt(NAME, "portail-someone-else")
    assert _refused(zone).code == "dns-mismatch"


def test_several_records_none_the_token_are_counted(zone: LoopbackDNS) -> None:
    zone.txt(NAME, "portail-old", "portail-older", "v=spf1 -all")
    refused = _refused(zone)
    assert refused.code == "dns-mismatch"
    assert refused.params["count"] == 3


def test_an_alias_to_another_name_is_refused_even_when_the_target_holds_the_token(zone: LoopbackDNS) -> None:
    zone.txt("_portail-challenge.elsewhere.example", TOKEN)
    zone.cname(NAME, "_portail-challenge.elsewhere.example")
    refused = _refused(zone)
    assert refused.code == "dns-cname"
    assert refused.params["target"] == "_portail-challenge.elsewhere.example"


def test_an_alias_to_a_missing_name_is_still_reported_as_an_alias(zone: LoopbackDNS) -> None:
    zone.cname(NAME, "_portail-challenge.gone.example")
    assert _refused(zone).code == "dns-cname"


def test_an_answer_too_large_for_udp_is_fetched_over_tcp_then_refused(zone: LoopbackDNS) -> None:
    zone.txt(NAME, *[f"filler-{i}-" + "x" * 200 for i in range(30)])
    refused = _refused(zone)
    assert refused.code == "dns-too-large"


def test_servfail_is_refused_with_a_reason(zone: LoopbackDNS) -> None:
    zone.fail(NAME)
    assert _refused(zone).code == "dns-servfail"


def test_a_silent_server_times_out_within_the_setting(zone: LoopbackDNS) -> None:
    zone.silent(NAME)
    started = time.monotonic()
    refused = _refused(zone, timeout=0.5)
    assert refused.code == "dns-timeout"
    assert time.monotonic() - started < 2.5


def test_a_resolver_that_never_answers_times_out() -> None:
    settings = Settings(dns_resolvers=f"127.0.0.1:{free_udp_port()}", dns_timeout_seconds=0.5)
    with pytest.raises(Refused) as caught:
        asyncio.run(dns_proof.check(settings, "https://node.test", TOKEN))
    assert caught.value.code in ("dns-timeout", "dns-servfail")  # ICMP refusal or silence


# ---------------------------------------------------------------- settings


def test_resolvers_setting_reads_addresses_with_ports() -> None:
    settings = Settings(dns_resolvers="9.9.9.9, [2620:fe::fe]:53;127.0.0.1:5353")
    assert settings.dns_nameservers == [("9.9.9.9", 53), ("2620:fe::fe", 53), ("127.0.0.1", 5353)]
    assert Settings().dns_nameservers == []


@pytest.mark.parametrize("value", ["dns.example", "1.2.3.4:0", "[::1]x", "1.2.3.4:port"])
def test_a_malformed_resolvers_setting_stops_startup(value: str) -> None:
    with pytest.raises(ConfigError, match="dns_resolvers"):
        load_settings(environ={"PORTAIL_DNS_RESOLVERS": value}, toml_path="/nonexistent.toml")


# ---------------------------------------------------------------- the DNS method keeps the SSRF guard


def test_the_dns_method_still_refuses_a_host_that_resolves_to_a_private_address(zone: LoopbackDNS) -> None:
    """The TXT record is right, but localhost is loopback: refused as the HTTP probes would refuse it."""
    zone.txt("_portail-challenge.localhost", TOKEN)
    settings = Settings(dns_resolvers=zone.resolvers, dns_timeout_seconds=2.0)
    with pytest.raises(Refused) as caught:
        asyncio.run(proof.check(settings, "dns", "https://localhost", TOKEN))
    assert caught.value.code == "address-loopback"
    allowed = settings.replace(allow_private_addresses=True)
    asyncio.run(proof.check(allowed, "dns", "https://localhost", TOKEN))  # the same record, where allowed


def test_a_name_not_yet_in_the_dns_for_http_is_still_checked_by_txt(zone: LoopbackDNS) -> None:
    zone.txt(NAME, TOKEN)
    asyncio.run(proof.check(_settings(zone), "dns", "https://node.test", TOKEN))

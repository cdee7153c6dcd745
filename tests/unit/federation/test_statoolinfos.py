"""StatoolInfos ``.properties`` writing and checking (portail/federation/statoolinfos.py): values
escaped as ``java.util.Properties`` reads them, and the field tables of the specification (mandatory
keys, value sets, DATE/DATETIME/EMAIL/URL types) enforced."""

from __future__ import annotations

import pytest

from portail.federation import residency, statoolinfos
from portail.federation.models import Instance

FED = "encommun"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("simple", "simple"),
        ("deux\nlignes", "deux\\nlignes"),
        ("a = b : c # d ! e", "a = b : c # d ! e"),  # after the first separator Java keeps them as they are
        ("C:\\chemin", "C:\\\\chemin"),
        (" espace devant", "\\ espace devant"),
        ("Québec", "Québec"),  # Latin-1 stays
        ("l’outil", "l\\u2019outil"),  # beyond Latin-1: \uXXXX
        ("🗂", "\\ud83d\\uddc2"),  # astral: UTF-16 surrogates, as Java writes them
        ("tab\tcr\rff\f", "tab\\tcr\\rff\\f"),
        ("nul\x00del\x7f", "nul\\u0000del\\u007f"),
    ],
)
def test_values_are_escaped_as_java_properties_and_read_back(value: str, written: str) -> None:
    assert statoolinfos.escape(value) == written
    text = statoolinfos.render([("Service", [("service.description", value), ("service.name", "x")])])
    assert statoolinfos.parse(text)["service.description"] == value


def test_a_key_that_would_need_escaping_is_refused() -> None:
    for bad in ("service name", "service=name", "service:name", "Service.Name", "solo"):
        with pytest.raises(ValueError, match="not a StatoolInfos key"):
            statoolinfos.key(bad)


def test_the_reader_follows_the_java_rules() -> None:
    text = "# comment\n! other comment\nk.a=1\nk.b : 2\nk.c   3\nk.d = long \\\n    suite\n\nk.e = \\u00e9\\=\n"
    assert statoolinfos.parse(text) == {"k.a": "1", "k.b": "2", "k.c": "3", "k.d": "long suite", "k.e": "é="}


def _service(**changes: str) -> dict[str, str]:
    props = {
        "file.class": "service",
        "file.protocol": statoolinfos.PROTOCOL,
        "file.datetime": "2026-12-05T09:00:00",
        "file.generator": statoolinfos.GENERATOR,
        "file.url": "https://portail.example.org/federation/statoolinfos/services/x.properties",
        "service.name": "Nuage",
        "service.description": "Fichiers",
        "service.website": "https://nuage.example.org",
        "service.startdate": "2026-01-31",
        "service.status.level": "OK",
        "service.registration": "Member;Client",
        "service.registration.load": "OPEN",
        "service.install.type": "PROVIDER",
        "software.name": "Nextcloud",
        "software.license.name": "AGPL-3.0",
        "host.name": "Coop",
        "host.provider": "Koumbit",
        "host.provider.type": "HOSTEDBAY",
        "host.server.type": "VIRTUAL",
        "host.country.name": "Canada",
        "host.country.code": "CA",
    }
    props.update(changes)
    return {k: v for k, v in props.items() if v != "<absent>"}


def test_a_complete_service_file_passes_the_field_table() -> None:
    assert statoolinfos.problems("service", _service(), FED) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"software.license.name": "<absent>"}, "missing software.license.name"),
        ({"service.registration": "Everyone"}, "bad VALUES in service.registration"),
        ({"service.registration": "Member;"}, "bad VALUES in service.registration"),
        ({"service.install.type": "docker"}, "bad VALUE in service.install.type"),
        ({"service.status.level": "UP"}, "bad VALUE in service.status.level"),
        ({"service.startdate": "31/01/2026"}, "bad DATE in service.startdate"),
        ({"service.startdate": "2026-02-30"}, "bad DATE in service.startdate"),
        ({"file.datetime": "2026-12-05 09:00"}, "bad DATETIME in file.datetime"),
        ({"service.website": "ftp://nuage.example.org"}, "bad URL in service.website"),
        ({"service.website": "https://localhost"}, "bad URL in service.website"),
        ({"service.contact.email": "personne"}, "bad EMAIL in service.contact.email"),
        ({"host.server.type": "<absent>"}, "missing host.server.type"),
        ({"service.colour": "bleu"}, "unknown key service.colour"),
        ({"file.class": "organization"}, "file.class is not service"),
    ],
)
def test_the_field_table_finds_what_is_wrong(changes: dict[str, str], problem: str) -> None:
    assert any(p.startswith(problem) for p in statoolinfos.problems("service", _service(**changes), FED))


def test_membership_keys_name_the_federation() -> None:
    organization = {
        "file.class": "organization",
        "file.protocol": statoolinfos.PROTOCOL,
        "file.datetime": "2026-12-05T09:00:00",
        "file.generator": "g",
        "file.url": "https://p.example.org/x.properties",
        "organization.name": "Coop",
        "organization.description": "d",
        "organization.type": "COOPERATIVE",
        "organization.status.level": "ACTIVE",
        "organization.website": "https://coop.example.org",
        "organization.contact.email": "a@coop.example.org",
        "organization.startdate": "2014-05-01",
        "organization.memberof.chatons.startdate": "2026-12-01",
        "organization.memberof.chatons.status.level": "ACTIVE",
        "subs.nuage": "https://p.example.org/services/nuage.properties",
    }
    found = statoolinfos.problems("organization", organization, FED)
    assert "missing organization.memberof.encommun.startdate" in found
    assert "unknown key organization.memberof.chatons.startdate" in found
    assert statoolinfos.problems("organization", organization, "chatons") == []


def test_data_leave_quebec_when_the_data_or_the_backups_are_elsewhere() -> None:
    node = Instance(slug="n", name="N", software="other", base_url="https://n.example.org")
    assert not residency.leaves_quebec(node) and not residency.of(node).declared
    node.data_location, node.backup_location = "CA-QC", "CA-QC"
    assert residency.of(node).in_quebec
    node.backup_location = "CA-ON"
    assert residency.leaves_quebec(node) and not residency.of(node).in_quebec
    node.data_location, node.backup_location = "CA", "CA-QC"  # "somewhere in Canada" is not Québec
    assert residency.leaves_quebec(node)
    assert residency.place_name("CA-ON", "en") == "Ontario (Canada)"
    assert residency.place_name("CA-BC", "fr-CA") == "Colombie-Britannique (Canada)"
    assert residency.place_name("US", "fr-CA") == "États-Unis" and residency.place_name("US", "en") == "United States"

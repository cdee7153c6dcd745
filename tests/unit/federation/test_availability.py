"""What a page may say about an instance: a demo entry, not reached yet, up, or down after being up."""

from __future__ import annotations

import datetime as dt

import pytest

from portail.federation import availability
from portail.federation.models import Instance

ONCE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def instance(base_url: str = "https://nuage.coop.ca", **values: object) -> Instance:
    return Instance(slug="nuage", name="Nuage", software="nextcloud", base_url=base_url, **values)


@pytest.mark.parametrize(
    ("base_url", "reserved"),
    [
        ("https://passerelles.encommun.example", True),
        ("https://nuage.example/", True),
        ("https://EXAMPLE.org", True),
        ("https://www.example.com:8443/x", True),
        ("https://site.invalid", True),
        ("https://lab.test", False),  # RFC 6761: a lab's resolver may answer .test
        ("http://127.0.0.1:8080", False),
        ("https://example.ca", False),
        ("https://notexample.com", False),
    ],
)
def test_names_reserved_never_to_resolve_are_recognised(base_url: str, reserved: bool) -> None:
    assert availability.reserved_host(base_url) is reserved


def test_a_declared_demo_is_a_demo_whatever_the_probe_said() -> None:
    assert availability.state(instance(demo=True)) == "demo"
    assert availability.state(instance(demo=True, health="down", last_up_at=ONCE)) == "demo"
    assert not availability.probed(instance(demo=True))


def test_a_reserved_name_is_a_demo_unless_it_was_ever_reached() -> None:
    assert availability.state(instance("https://nuage.example")) == "demo"
    assert not availability.probed(instance("https://nuage.example"))
    assert availability.state(instance("https://nuage.example", health="up")) == "up"


def test_never_probed_and_never_reached_are_not_down() -> None:
    assert availability.state(instance()) == "new"
    assert availability.state(instance(health="down", consecutive_failures=9)) == "new"
    assert availability.probed(instance())


def test_reached_then_failing_is_down() -> None:
    assert availability.state(instance(health="up", last_up_at=ONCE)) == "up"
    assert availability.state(instance(health="down", last_up_at=ONCE)) == "down"

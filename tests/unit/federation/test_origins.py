"""A node's base URL is compared on its normalized origin (scheme, IDNA host, default port, trailing
dot, path), so the same node cannot be registered twice under another spelling."""

from __future__ import annotations

import pytest

from portail.federation.origins import origin_key


@pytest.mark.parametrize(
    "spelling",
    [
        "http://127.0.0.1:8410",
        "http://127.0.0.1:8410/",
        "http://127.0.0.1:8410/.",
        "http://127.0.0.1:08410",
        "HTTP://LOCALHOST:8410",
        "http://localhost.:8410//",
        "http://[::ffff:127.0.0.1]:8410",
        "http://[::1]:8410/./",
        "http://127.0.0.2:8410?x=1#y",
    ],
)
def test_spellings_of_one_loopback_node_share_one_key(spelling: str) -> None:
    assert origin_key(spelling) == "http://localhost:8410"


def test_default_ports_trailing_dots_and_idna_hosts_are_normalized() -> None:
    assert origin_key("https://Café.Example.:443/nuage/") == "https://xn--caf-dma.example/nuage"
    assert origin_key("https://xn--caf-dma.example/nuage/a/..") == "https://xn--caf-dma.example/nuage"
    assert origin_key("http://cloud.example:80") == "http://cloud.example"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://cloud.example", "http://cloud.example"),
        ("https://cloud.example", "https://cloud.example:8443"),
        ("https://cloud.example/a", "https://cloud.example/b"),
        ("https://cloud.example", "https://chat.cloud.example"),
        ("http://127.0.0.1:8410", "http://192.0.2.1:8410"),
    ],
)
def test_different_nodes_keep_different_keys(one: str, other: str) -> None:
    assert origin_key(one) != origin_key(other)


@pytest.mark.parametrize("bad", ["", "cloud.example", "https://", "https://cloud.example:99999", "https://a..b"])
def test_unreadable_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        origin_key(bad)

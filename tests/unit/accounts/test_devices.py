"""Sessions are described by browser and system, not by their raw User-Agent."""

from __future__ import annotations

import pytest

from portail.accounts.devices import Device, describe

CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_LINUX, Device("Chrome", "Linux", False)),
        (EDGE_WINDOWS, Device("Edge", "Windows", False)),
        (SAFARI_IPHONE, Device("Safari", "iOS", True)),
        (FIREFOX_MAC, Device("Firefox", "macOS", False)),
        (CHROME_ANDROID, Device("Chrome", "Android", True)),
        ("", Device("", "", False)),
        ("x" * 5000, Device("", "", False)),
    ],
)
def test_common_browsers_and_systems_are_named(agent: str, expected: Device) -> None:
    assert describe(agent) == expected

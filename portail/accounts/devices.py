"""A short description of a session's browser and system from its User-Agent ("Firefox, Windows").

Display only (the sessions list of "Mon compte"): the common browsers and systems are named, anything
else is "unknown"; the raw User-Agent stays stored and is shown on demand. The order of the checks
matters because browsers announce each other (Edge and Opera say "Chrome", Chrome says "Safari").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BROWSERS: tuple[tuple[str, str], ...] = (
    (r"\bEdg(?:e|A|iOS)?/", "Edge"),
    (r"\bOPR/|\bOpera\b", "Opera"),
    (r"\bSamsungBrowser/", "Samsung Internet"),
    (r"\bElement\b|\bRiot\b", "Element"),
    (r"\bNextcloud-(?:android|iOS)\b|\bmirall\b", "Nextcloud"),
    (r"\bFirefox/|\bFxiOS/", "Firefox"),
    (r"\bChromium/", "Chromium"),
    (r"\bChrome/|\bCriOS/", "Chrome"),
    (r"\bVersion/[\d.]+.*\bSafari/", "Safari"),
    (r"\bcurl/", "curl"),
)
_SYSTEMS: tuple[tuple[str, str], ...] = (
    (r"\bAndroid\b", "Android"),
    (r"\biPhone\b|\biPad\b|\biPod\b|\biOS\b", "iOS"),
    (r"\bCrOS\b", "ChromeOS"),
    (r"\bWindows\b", "Windows"),
    (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
    (r"\bLinux\b|\bX11\b", "Linux"),
)


@dataclass(frozen=True)
class Device:
    browser: str  # "" when not recognized
    system: str  # "" when not recognized
    mobile: bool


def describe(user_agent: str) -> Device:
    value = user_agent[:400]
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, value)), "")
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, value)), "")
    mobile = bool(re.search(r"\bMobile\b|\bAndroid\b|\biPhone\b", value))
    return Device(browser, system, mobile)

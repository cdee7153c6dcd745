"""The cache of clients' ``jwks_uri`` key sets (``portail/oidc/client_keys.py``): TTL, refetch on an
unknown ``kid`` at most once per 30 s, failures remembered, one fetch for concurrent requests.
The fetcher is a fake counting its calls and the clock a number the test moves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from portail.config import Settings
from portail.oidc import client_keys
from portail.oidc.client_keys import KeysUnavailable, RemoteKeySets, Target

TARGET = Target("tool", "https://outil.example.org/jwks.json", guarded=True)


class FakeTool:
    def __init__(self, *kids: str, ttl: float = 300.0) -> None:
        self.kids = list(kids)
        self.ttl = ttl
        self.calls = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    async def __call__(self, _settings: Settings, _uri: str) -> tuple[dict[str, Any], float]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise KeysUnavailable("The client's jwks_uri could not be fetched (unreachable)")
        return {"keys": [{"kty": "oct", "kid": kid} for kid in self.kids]}, self.ttl


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _kids(keys: client_keys.RemoteKeys) -> list[str]:
    assert keys.jwks is not None, keys.error
    return [k["kid"] for k in keys.jwks["keys"]]


def test_a_key_set_is_kept_for_its_ttl_then_fetched_again(unit_settings: Settings) -> None:
    tool, clock = FakeTool("a", ttl=120), Clock()
    cache = RemoteKeySets(clock, tool)

    async def run() -> None:
        assert _kids(await cache.keys(unit_settings, TARGET, "a")) == ["a"]
        clock.now += 119
        await cache.keys(unit_settings, TARGET, "a")
        assert tool.calls == 1
        clock.now += 2
        await cache.keys(unit_settings, TARGET, "a")
        assert tool.calls == 2

    asyncio.run(run())


def test_an_unknown_kid_refetches_at_most_once_per_thirty_seconds(unit_settings: Settings) -> None:
    tool, clock = FakeTool("a"), Clock()
    cache = RemoteKeySets(clock, tool)

    async def run() -> None:
        await cache.keys(unit_settings, TARGET, "a")
        tool.kids = ["b"]
        assert _kids(await cache.keys(unit_settings, TARGET, "b")) == ["b"]  # rotation: refetched at once
        for kid in ("c", "d", "e"):
            assert _kids(await cache.keys(unit_settings, TARGET, kid)) == ["b"]
        assert tool.calls == 2
        clock.now += client_keys.REFETCH_SECONDS
        tool.kids = ["c"]
        assert _kids(await cache.keys(unit_settings, TARGET, "c")) == ["c"]
        assert tool.calls == 3

    asyncio.run(run())


def test_a_failed_fetch_is_remembered_and_a_failed_refetch_keeps_the_keys(unit_settings: Settings) -> None:
    tool, clock = FakeTool("a"), Clock()
    cache = RemoteKeySets(clock, tool)
    other = Target("other", "https://autre.example.org/jwks.json", guarded=False)

    async def run() -> None:
        await cache.keys(unit_settings, TARGET, "a")
        tool.down = True
        kept = await cache.keys(unit_settings, TARGET, "unknown")
        assert _kids(kept) == ["a"] and tool.calls == 2
        failed = await cache.keys(unit_settings, other, "x")
        assert failed.jwks is None and "unreachable" in failed.error
        await cache.keys(unit_settings, other, "x")
        assert tool.calls == 3
        tool.down = False
        clock.now += client_keys.REFETCH_SECONDS
        assert _kids(await cache.keys(unit_settings, other, "a")) == ["a"]

    asyncio.run(run())


def test_concurrent_requests_share_one_fetch(unit_settings: Settings) -> None:
    tool = FakeTool("a")
    cache = RemoteKeySets(Clock(), tool)

    async def run() -> None:
        tool.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(cache.keys(unit_settings, TARGET, "a")) for _ in range(5)]
        await asyncio.sleep(0)
        tool.gate.set()
        results = await asyncio.gather(*waiting)
        assert all(_kids(r) == ["a"] for r in results)
        assert tool.calls == 1

    asyncio.run(run())


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        ("", client_keys.DEFAULT_TTL),
        ("public, max-age=600", 600.0),
        ("max-age=5", client_keys.MIN_TTL),
        ("max-age=86400", client_keys.MAX_TTL),
        ("max-age=600, no-cache", client_keys.MIN_TTL),
        ("no-store", client_keys.MIN_TTL),
        ("max-age=soon", client_keys.DEFAULT_TTL),
    ],
)
def test_cache_control_max_age_is_honoured_within_bounds(header: str, ttl: float) -> None:
    assert client_keys.ttl_of(header) == ttl

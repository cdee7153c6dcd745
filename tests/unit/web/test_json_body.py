"""The one JSON body reader (``portail.web.json_body``): size, content type, nesting depth, Unicode
and shape are refused with a status and a description, before any endpoint sees the body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from portail.web import json_body
from portail.web.json_body import MAX_DEPTH, JsonBodyError, parse, problem


def _refused(raw: bytes, **kwargs: Any) -> JsonBodyError:
    with pytest.raises(JsonBodyError) as caught:
        parse(raw, **kwargs)
    return caught.value


def test_a_plain_object_is_read() -> None:
    assert parse(b'{"name": "Caf\\u00e9 \\ud83d\\ude00", "tags": ["a", "b"], "n": 1.5}') == {
        "name": "Café 😀",
        "tags": ["a", "b"],
        "n": 1.5,
    }


def test_fifteen_hundred_levels_of_nesting_are_a_400_not_a_recursion_error() -> None:
    refused = _refused(b"[" * 1500 + b"]" * 1500, want_object=False)
    assert refused.status == 400 and "nested" in refused.description
    objects = _refused(b'{"a":' * 1500 + b"1" + b"}" * 1500)
    assert objects.status == 400 and "nested" in objects.description


def test_nesting_is_allowed_up_to_the_limit() -> None:
    inside = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse(f'{{"a": {inside}}}'.encode()) is not None
    deeper = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert "nested" in _refused(f'{{"a": {deeper}}}'.encode()).description


@pytest.mark.parametrize(
    "raw",
    [b'{"client_name": "\\ud800"}', b'{"\\udfff": 1}', b'{"a": ["ok", "x\\udc00y"]}', b'{"a": "\\ude00\\ud83d"}'],
)
def test_an_unpaired_surrogate_anywhere_is_refused(raw: bytes) -> None:
    """RFC 8259 §8.2: such strings are valid JSON but not Unicode; they cannot be stored nor sent back."""
    refused = _refused(raw)
    assert refused.status == 400 and "surrogate" in refused.description


def test_control_characters_are_refused_but_tab_and_newlines_are_text() -> None:
    assert "control" in _refused(b'{"a": "x\\u0000y"}').description
    assert "control" in _refused(b'{"a\\u0007": 1}').description
    assert parse(b'{"a": "line\\nnext\\tcell\\r"}') == {"a": "line\nnext\tcell\r"}


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"[1, 2]", "object"),
        (b'"text"', "object"),
        (b"null", "object"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_refused(raw: bytes, word: str) -> None:
    refused = _refused(raw)
    assert refused.status == 400 and word in refused.description


def test_a_byte_order_mark_is_ignored() -> None:
    """RFC 8259 §8.1: a parser MAY ignore a BOM."""
    assert parse("\ufeff{}".encode()) == {}


def test_problem_walks_wide_documents_without_recursion() -> None:
    assert problem([{"a": "b"}] * 100_000) is None
    assert problem({"a": [{"b": "\ud800"}]}) is not None


def test_inspect_false_leaves_the_parts_to_the_caller() -> None:
    body = parse(b'{"items": [{"title": "\\ud800"}, {"title": "ok"}]}', inspect=False)
    assert [problem(item) is None for item in body["items"]] == [False, True]


# ---------------------------------------------------------------- reading the request


async def _echo(request: Request) -> Response:
    try:
        limit = int(request.query_params.get("max", json_body.DEFAULT_MAX_BYTES))
        empty = request.query_params.get("empty") == "1"
        return JSONResponse({"body": await json_body.read_json(request, max_bytes=limit, allow_empty=empty)})
    except JsonBodyError as exc:
        return JSONResponse({"status": exc.status, "description": exc.description}, status_code=exc.status)


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(Starlette(routes=[Route("/echo", _echo, methods=["POST"])])) as test_client:
        yield test_client


def test_the_content_type_must_be_json(http: TestClient) -> None:
    assert http.post("/echo", content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert http.post("/echo", data={"a": "b"}).status_code == 415
    assert http.post("/echo", content=b"{}").status_code == 415
    with_charset = http.post("/echo", content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"})
    assert with_charset.status_code == 200
    structured = http.post("/echo", content=b"{}", headers={"Content-Type": "application/merge-patch+json"})
    assert structured.status_code == 200


def test_a_body_over_the_limit_is_413_by_its_declared_length_or_while_read(http: TestClient) -> None:
    big = json.dumps({"a": "x" * 200}).encode()
    declared = http.post("/echo?max=100", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield big[:50]
        yield big[50:]

    streamed = http.post("/echo?max=100", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert http.post("/echo?max=1000", content=big, headers={"Content-Type": "application/json"}).status_code == 200


def test_an_empty_body_may_stand_for_an_empty_object_without_a_content_type(http: TestClient) -> None:
    assert http.post("/echo?empty=1").json() == {"body": {}}
    assert http.post("/echo").status_code == 415
    assert http.post("/echo", headers={"Content-Type": "application/json"}).status_code == 400

"""Reading the CSV of ``portail users import`` (accounts/imports.py): each line checked on its own."""

from __future__ import annotations

import io

import pytest

from portail.accounts.imports import Candidate, Refusal, read_rows
from portail.accounts.members import AccountError


def rows(text: str) -> list[Candidate | Refusal]:
    return list(read_rows(io.StringIO(text, newline="")))


def test_quoted_fields_defaults_and_optional_columns_are_read() -> None:
    text = (
        "Email,Name,Password_Hash,username,locale,verified,created_at,organizations\r\n"
        '"a@Example.ORG","Roy, Alice","",alice,en_US,false,2020-01-02T03:04:05Z,"tiess; coop"\r\n'
        'b@example.org,"",,bobby,,,,\r\n'
        '"c@example.org","Ligne\nsur deux","",,,,,\r\n'
    )
    first, second, third = rows(text)
    assert isinstance(first, Candidate) and isinstance(second, Candidate) and isinstance(third, Candidate)
    assert (first.email, first.name, first.locale, first.verified) == ("a@example.org", "Roy, Alice", "en", False)
    assert first.organizations == ("tiess", "coop") and first.created_at is not None
    assert first.created_at.isoformat() == "2020-01-02T03:04:05+00:00"
    assert (second.name, second.locale, second.verified, second.line) == ("bobby", "fr-CA", True, 3)
    assert third.line == 4 and third.name == "Ligne sur deux"


def test_each_bad_line_is_refused_with_its_number_and_reason() -> None:
    text = "email,name,password_hash,verified,created_at,locale\n" + "\n".join(
        [
            "ok@example.org,Ok,,,,",
            "OK@example.org,Again,,,,",
            "x@example.org,X,,peut-être,,",
            "y@example.org,Y,,,2020-01-01 10:00,",
            "z@example.org,Z,,,,es",
            "w@example.org,W,,",
        ]
    )
    found = {r.line: r.reason for r in rows(text) if isinstance(r, Refusal)}
    assert found == {
        3: "Adresse en double (déjà à la ligne %(first)s).",
        4: "Valeur de « verified » invalide : %(value)s (true ou false).",
        5: "Date « created_at » invalide : %(value)s (RFC 3339 attendu).",
        6: "Langue inconnue : %(value)s (fr ou en).",
        7: "%(expected)s champs attendus, %(found)s trouvés.",
    }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email;name;password_hash", "points-virgules"),
        ("email,name", "Colonne obligatoire absente"),
        ("email,name,password_hash,extra", "Colonne inconnue"),
        ("email,name,password_hash,email", "deux fois"),
    ],
)
def test_a_bad_header_stops_the_import(header: str, message: str) -> None:
    with pytest.raises(AccountError) as caught:
        rows(header + "\n")
    assert message in caught.value.message

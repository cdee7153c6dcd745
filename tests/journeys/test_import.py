"""Journey: an operator brings the members of another tool into Portail with ``portail users import``,
and each member logs in through the login form with the password they already had.

Every hash below is made by the real implementation of its format where one runs here: ``bcrypt``
(the C library PHP and Discourse-like tools also use), Django's own ``make_password``,
``argon2-cffi`` (the reference argon2), ``openssl passwd -6`` (glibc's SHA-512 crypt), libpass's
phpass and LDAP salted SHA (the reference Python ports), and for Drupal 7 a hash made by Drupal
itself (hashcat's published example). Nothing is written to the database by hand; the stored hash
is only *read* (SQLite, read-only) to see that it became argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from argon2 import PasswordHasher, Type
from passlib.hash import ldap_salted_sha1, ldap_salted_sha512, phpass

from tests.journeys.conftest import Deployment, links_in

INSTANCES = """
[[organizations]]
slug = "passerelles-estrie"
name = "Passerelles Estrie"
kind = "organization"
"""


def _django(algorithm: str) -> Callable[[str], str]:
    def make(password: str) -> str:
        from django.conf import settings

        if not settings.configured:
            settings.configure(
                PASSWORD_HASHERS=[
                    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
                    "django.contrib.auth.hashers.Argon2PasswordHasher",
                    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
                ]
            )
        from django.contrib.auth.hashers import make_password

        return str(make_password(password, hasher=algorithm))

    return make


def _bcrypt(prefix: bytes) -> Callable[[str], str]:
    def make(password: str) -> str:
        made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6, prefix=b"2b")).decode()
        # PHP's password_hash writes $2y$, older tools $2a$: the same algorithm under another name
        return made.replace("$2b$", f"${prefix.decode()}$", 1)

    return make


def _wordpress_68(password: str) -> str:
    """``wp_hash_password`` of WordPress 6.8: "$wp" + PHP's bcrypt of base64(HMAC-SHA-384(password, "wp-sha384"))."""
    prehash = base64.b64encode(hmac.new(b"wp-sha384", password.encode(), hashlib.sha384).digest())
    return "$wp" + bcrypt.hashpw(prehash, bcrypt.gensalt(rounds=6)).decode().replace("$2b$", "$2y$", 1)


def _openssl_sha512_crypt(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()


def _argon2(kind: Type) -> Callable[[str], str]:
    return lambda password: PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1, type=kind).hash(password)


# format → (make a hash of a password, or a fixed hash with its password)
FORMATS: dict[str, Callable[[str], str] | tuple[str, str]] = {
    "bcrypt-2b": _bcrypt(b"2b"),
    "bcrypt-2a": _bcrypt(b"2a"),
    "bcrypt-2y": _bcrypt(b"2y"),
    "wordpress-6.8": _wordpress_68,
    "phpass-P": lambda password: str(phpass.hash(password)),
    "phpass-H": lambda password: str(phpass.using(ident="H").hash(password)),
    "drupal7-S": ("$S$C33783772bRXEx1aCsvY.dqgaaSu76XmVlKrW9Qu8IQlvxHlmzLf", "hashcat"),
    "django-pbkdf2_sha256": _django("pbkdf2_sha256"),
    "django-argon2": _django("argon2"),
    "django-bcrypt_sha256": _django("bcrypt_sha256"),
    "argon2id": _argon2(Type.ID),
    "argon2i": _argon2(Type.I),
    "ldap-SSHA": lambda password: str(ldap_salted_sha1.hash(password)),
    "ldap-SSHA512": lambda password: str(ldap_salted_sha512.hash(password)),
    "sha512-crypt": _openssl_sha512_crypt,
}


def _member(fmt: str) -> tuple[str, str, str]:
    """(email, password, hash) of the member imported with format ``fmt``."""
    made = FORMATS[fmt]
    if isinstance(made, tuple):
        stored, password = made
    else:
        password = f"Mot-de-passe {fmt} été"
        stored = made(password)
    return f"{fmt.lower()}@passerelles.example", password, stored


def csv_text(rows: list[list[str]], header: str = "email,name,password_hash") -> str:
    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value

    return header + "\n" + "".join(",".join(quote(v) for v in row) + "\n" for row in rows)


def stored_hash(deployment: Deployment, email: str) -> str:
    """The member's stored hash, read (never written) from the deployment's SQLite database."""
    with sqlite3.connect(f"file:{deployment.var / 'portail.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT password_hash FROM member WHERE email_key = ?", (email.casefold(),)).fetchone()
    assert row is not None, email
    return str(row[0])


def import_file(deployment: Deployment, text: str, *args: str, check: bool = True) -> dict[str, object]:
    path = deployment.root / "members.csv"
    path.write_text(text, encoding="utf-8")
    done = deployment.cli("users", "import", str(path), "--json", *args, check=False)
    assert done.returncode in ((0,) if check else (0, 3)), done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, dict[str, tuple[str, str]]]]:
    """One deployment where every format's member was imported from one CSV file."""
    deployment = Deployment(tmp_path_factory.mktemp("import"))
    deployment.env["PORTAIL_LOGIN_IP_FAILURES_BEFORE_DELAY"] = "1000"
    deployment.write_instances(INSTANCES)
    members = {fmt: _member(fmt) for fmt in FORMATS}
    rows = [[email, f"Membre {fmt}", stored] for fmt, (email, _password, stored) in members.items()]
    try:
        deployment.start()
        report = import_file(deployment, csv_text(rows))
        assert report["created"] == len(FORMATS) and report["refused"] == []
        yield deployment, {fmt: (email, password) for fmt, (email, password, _s) in members.items()}
    finally:
        deployment.close()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_imported_member_logs_in_with_their_old_password_and_gets_an_argon2id_hash(
    migrated: tuple[Deployment, dict[str, tuple[str, str]]], fmt: str
) -> None:
    """Journey: a member imported with a hash from their old tool logs in through the form."""
    deployment, members = migrated
    email, password = members[fmt]
    visitor = deployment.visitor()
    wrong = visitor.submit("/login", data={"email": email, "password": password + "x", "next": "/"})
    assert wrong.status_code == 401
    assert not stored_hash(deployment, email).startswith("$argon2id$v=19$m=65536")

    visitor.login(email, password)
    assert visitor.follow(visitor.get("/")).status_code == 200
    upgraded = stored_hash(deployment, email)
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")

    again = deployment.visitor()
    assert again.submit("/login", data={"email": email, "password": password + "x"}).status_code == 401
    again.login(email, password)


def test_import_is_idempotent_and_reports_existing_members_in_any_case(
    migrated: tuple[Deployment, dict[str, tuple[str, str]]],
) -> None:
    """Journey: the operator runs the same import twice; the second run creates and changes nothing."""
    deployment, members = migrated
    email, password = members["bcrypt-2b"]
    other_hash = bcrypt.hashpw(b"another password", bcrypt.gensalt(rounds=4)).decode()
    text = csv_text([[email.upper(), "Nom Remplacé", other_hash], ["neuve@passerelles.example", "Neuve", ""]])
    first = import_file(deployment, text)
    assert first["created"] == 1
    assert first["existing"] == [{"line": 2, "email": email}]
    second = import_file(deployment, text)
    assert second["created"] == 0
    assert [row["email"] for row in second["existing"]] == [email, "neuve@passerelles.example"]  # type: ignore[attr-defined]
    # never overwritten: the old password still opens the account, the file's one does not
    visitor = deployment.visitor()
    assert visitor.submit("/login", data={"email": email, "password": "another password"}).status_code == 401
    visitor.login(email, password)
    listing = json.loads(deployment.cli("users", "list", "--json").stdout)
    assert {m["email"]: m["name"] for m in listing}[email] == "Membre bcrypt-2b"

    renamed = import_file(deployment, text, "--update-names")
    assert renamed["updated"] == [{"line": 2, "email": email}]
    listing = json.loads(deployment.cli("users", "list", "--json").stdout)
    assert {m["email"]: m["name"] for m in listing}[email] == "Nom Remplacé"


def test_dry_run_changes_nothing(migrated: tuple[Deployment, dict[str, tuple[str, str]]]) -> None:
    """Journey: the operator tries a file with --dry-run before the real import."""
    deployment, _members = migrated
    before = deployment.cli("users", "list", "--json").stdout
    text = csv_text([["essai@passerelles.example", "Essai", ""], ["bad-address", "X", ""]])
    report = import_file(deployment, text, "--dry-run", check=False)
    assert report["dry_run"] is True and report["created"] == 1
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [(3, "Invalid email address.")]  # type: ignore[attr-defined]
    assert deployment.cli("users", "list", "--json").stdout == before


def test_every_refused_line_is_reported_and_the_rest_goes_through(
    migrated: tuple[Deployment, dict[str, tuple[str, str]]],
) -> None:
    """Journey: a messy export — bad addresses, hashes truncated or with a wrong prefix, duplicates, a
    10,000-character line, an unknown organization — is imported; each bad line is named, the rest is in."""
    deployment, _members = migrated
    good = bcrypt.hashpw(b"Mot de passe", bcrypt.gensalt(rounds=4)).decode()
    rows = [
        ["ok1@passerelles.example", "Ok Un", good, "fr", "true", "2019-05-04T10:00:00-04:00", "passerelles-estrie"],
        ["pas-une-adresse", "X", "", "", "", "", ""],
        ["tronque@passerelles.example", "T", good[:-4], "", "", "", ""],
        ["prefixe@passerelles.example", "P", "$2q$" + good[4:], "", "", "", ""],
        ["md5@passerelles.example", "M", "5f4dcc3b5aa765d61d8327deb882cf99", "", "", "", ""],
        ["OK1@passerelles.example", "Double", "", "", "", "", ""],
        ["long@passerelles.example", "L" * 10_000, "", "", "", "", ""],
        ["org@passerelles.example", "O", "", "", "", "", "inconnue"],
        ["date@passerelles.example", "D", "", "", "", "hier", ""],
        ["ok2@passerelles.example", "Ok Deux", "", "en", "false", "", ""],
    ]
    header = "email,name,password_hash,locale,verified,created_at,organizations"
    report = import_file(deployment, csv_text(rows, header), check=False)
    assert report["created"] == 2
    refused = {r["line"]: r["reason"] for r in report["refused"]}  # type: ignore[attr-defined]
    assert refused == {
        3: "Invalid email address.",
        4: "Unknown or truncated password hash format.",
        5: "Unknown or truncated password hash format.",
        6: "Unknown or truncated password hash format.",
        7: "Duplicate address (already on line 2).",
        8: "Line too long (more than 8192 characters).",
        9: "Unknown organization: inconnue.",
        10: "Invalid “created_at” date: hier (RFC 3339 expected).",
    }
    visitor = deployment.visitor()
    visitor.login("ok1@passerelles.example", "Mot de passe")
    assert "Passerelles Estrie" in visitor.follow(visitor.get("/organizations")).text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("\ufeffemail;name;password_hash\na@b.example;A;\n", "semicolons"),
        ("email,name\na@b.example,A\n", "Required column missing: password_hash"),
        ("email,name,password_hash,mot_de_passe\n", "Unknown column: mot_de_passe"),
        ("", "The file is empty"),
    ],
)
def test_a_file_that_cannot_be_read_stops_before_anything_is_written(
    tmp_path: Path, content: str, message: str
) -> None:
    """Journey: the operator gives a file saved the wrong way; they are told why and nothing is imported."""
    deployment = Deployment(tmp_path)
    path = tmp_path / "members.csv"
    path.write_text(content, encoding="utf-8")
    done = deployment.cli("users", "import", str(path), check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert json.loads(deployment.cli("users", "list", "--json").stdout) == []


def test_a_50_megabyte_line_and_a_file_not_in_utf8_are_refused(tmp_path: Path) -> None:
    """Journey: the operator points the import at a 50 MB file with one runaway field, then at a Latin-1 file."""
    deployment = Deployment(tmp_path)
    huge = tmp_path / "huge.csv"
    with huge.open("w", encoding="utf-8") as handle:
        handle.write('email,name,password_hash\na@b.example,"')
        handle.write("x" * 50_000_000)
        handle.write('",\n')
    done = deployment.cli("users", "import", str(huge), check=False)
    assert done.returncode == 1 and "line 2" in done.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,name,password_hash\nh@b.example,Hélène,\n".encode("latin-1"))
    done = deployment.cli("users", "import", str(latin), check=False)
    assert done.returncode == 1 and "not UTF-8 (line 2)" in done.stderr
    assert json.loads(deployment.cli("users", "list", "--json").stdout) == []


def test_a_member_without_a_password_is_invited_and_chooses_one(
    migrated: tuple[Deployment, dict[str, tuple[str, str]]],
) -> None:
    """Journey: an imported member without a password gets an invitation mail, chooses a password, logs in."""
    deployment, _members = migrated
    address = "invitee@passerelles.example"
    report = import_file(deployment, csv_text([[address, "Invitée", ""]]), "--send-invitations")
    assert report["invited"] == 1
    visitor = deployment.visitor()
    assert visitor.submit("/login", data={"email": address, "password": ""}).status_code == 401
    mail = deployment.wait_for_mail(address)[-1]
    link = next(link for link in links_in(mail) if "/password/reset" in link).replace(deployment.base_url, "")
    chosen = "Un mot de passe bien à moi"
    done = visitor.submit(link, data={"password": chosen, "password_confirm": chosen})
    assert done.status_code in (200, 303), done.text[:500]
    visitor.login(address, chosen)
    # a second import of the same file invites nobody again
    assert import_file(deployment, csv_text([[address, "Invitée", ""]]), "--send-invitations")["invited"] == 0

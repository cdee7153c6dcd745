"""``instances.toml`` and ``portail instances sync``: idempotent, says what changed, never deletes
silently (``--prune``), creates each instance's OIDC client with its secret printed once or read from
the environment variable the file names."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from portail import cli
from portail.accounts.models import AuditEvent, Organization
from portail.config import Settings
from portail.db import Database
from portail.federation import instances_file
from portail.federation.instances_file import FileError
from portail.federation.models import Hoster, Instance
from portail.oidc import clients
from tests.federation_factories import in_db

REPO_FILE = Path(__file__).resolve().parents[3] / "instances.toml"

SMALL = """
[[hosters]]
slug = "coop"
name = "Coop"
contact_email = "tech@coop.example"

[[organizations]]
slug = "tiess"
name = "TIESS"

[[instances]]
slug = "nuage"
name = "Nuage"
software = "nextcloud"
base_url = "https://nuage.example"
hoster = "coop"
scope = "central"

[[instances]]
slug = "forum"
name = "Forum"
software = "discourse"
base_url = "https://forum.example"
scope = "organization"
organization = "tiess"
client_secret_env = "ENCOMMUN_SECRET_FORUM"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instances.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sync(db: Database, settings: Settings, path: Path, prune: bool = False, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return db.call(instances_file.sync, settings, instances_file.load(path), prune=prune, environ=env or {})


def test_the_repository_file_is_valid_and_syncs_every_declared_row(db: Database, unit_settings: Settings) -> None:
    secret = "a-secret-from-the-environment-0123456789"
    report = sync(db, unit_settings, REPO_FILE, env={"ENCOMMUN_SECRET_PASSERELLES": secret})
    data = instances_file.load(REPO_FILE)
    assert report.created == sum(len(data[k]) for k in ("hosters", "organizations", "instances"))
    assert {slug for slug, _cid, _s in report.secrets} == {i["slug"] for i in data["instances"]} - {"passerelles"}
    passerelles = db.call(lambda s: clients.get_client(s, "passerelles"))
    assert passerelles is not None and clients.verify_secret(passerelles, secret)
    nuage = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage")).one())
    assert nuage.status == "active" and nuage.source == "file"
    assert nuage.redirect_uris[0] == "https://nuage.encommun.example/apps/user_oidc/code"
    # Every example instance declares its purposes and categories in English too (shown to English readers).
    assert nuage.purposes_en == ["Log you in", "Share your files and calendars"]
    assert all(len(i["purposes_en"]) == len(i["purposes"]) for i in data["instances"])
    # ... and describes itself in both languages.
    assert all(i["description"] and i["description_en"] for i in data["instances"])
    assert nuage.description.startswith("Vos fichiers") and nuage.description_en.startswith("Your files")
    territorial = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage-memphremagog")).one())
    territory = db.call(lambda s: s.exec(select(Organization).where(Organization.slug == "mrc-memphremagog")).one())
    assert territorial.organization_id == territory.id and territory.region == "05"


def test_english_purposes_and_categories_are_read_and_their_changes_reported(
    db: Database, unit_settings: Settings, tmp_path: Path
) -> None:
    declared = 'purposes = ["Vous connecter"]\ndata_categories = ["identité"]\n'
    path = write(tmp_path, SMALL.replace('scope = "central"\n', 'scope = "central"\n' + declared, 1))
    sync(db, unit_settings, path)
    english = declared + 'purposes_en = ["Log you in"]\ndata_categories_en = ["identity"]\n'
    write(tmp_path, SMALL.replace('scope = "central"\n', 'scope = "central"\n' + english, 1))
    report = sync(db, unit_settings, path)
    [changed] = [line for line in report.lines if line.startswith("~ instance nuage")]
    assert "purposes_en" in changed and "data_categories_en" in changed
    nuage = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage")).one())
    assert (nuage.purposes, nuage.purposes_en, nuage.data_categories_en) == (
        ["Vous connecter"],
        ["Log you in"],
        ["identity"],
    )


def test_descriptions_in_both_languages_are_read_checked_and_their_changes_reported(
    db: Database, unit_settings: Settings, tmp_path: Path
) -> None:
    french = 'description = """  Vos fichiers et agendas.\n"""\n'
    path = write(tmp_path, SMALL.replace('scope = "central"\n', 'scope = "central"\n' + french, 1))
    sync(db, unit_settings, path)
    nuage = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage")).one())
    assert (nuage.description, nuage.description_en) == ("Vos fichiers et agendas.", "")  # trimmed; no English yet
    english = french + 'description_en = "Your files and calendars."\n'
    write(tmp_path, SMALL.replace('scope = "central"\n', 'scope = "central"\n' + english, 1))
    report = sync(db, unit_settings, path)
    [changed] = [line for line in report.lines if line.startswith("~ instance nuage")]
    assert "(description_en)" in changed
    nuage = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage")).one())
    assert nuage.description_en == "Your files and calendars."
    # Left out of the file, a description stays as it is (it may have been written on the node's page).
    write(tmp_path, SMALL)
    assert sync(db, unit_settings, path).lines == []
    nuage = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "nuage")).one())
    assert (nuage.description, nuage.description_en) == ("Vos fichiers et agendas.", "Your files and calendars.")


def test_organizations_are_described_in_both_languages(db: Database, unit_settings: Settings, tmp_path: Path) -> None:
    texts = 'description = "Économie sociale"\ndescription_en = "Social economy"\n'
    path = write(tmp_path, SMALL.replace('name = "TIESS"\n', 'name = "TIESS"\n' + texts, 1))
    sync(db, unit_settings, path)
    tiess = db.call(lambda s: s.exec(select(Organization).where(Organization.slug == "tiess")).one())
    assert (tiess.description, tiess.description_en) == ("Économie sociale", "Social economy")
    write(tmp_path, SMALL.replace('name = "TIESS"\n', 'name = "TIESS"\ndescription = "Économie sociale"\n', 1))
    assert "~ organization tiess : modifié / updated (description_en)" in sync(db, unit_settings, path).lines
    data = instances_file.load(REPO_FILE)
    assert all(o["description"] and o["description_en"] for o in data["organizations"])


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("description_en = 42", "description_en : chaîne attendue / expected a string"),
        ('description = ["Nuage"]', "description : chaîne attendue / expected a string"),
        ('description_fr = "Nuage"', "clé inconnue / unknown key: description_fr"),
        (f'description_en = "{"x" * 2001}"', "[nuage] : description_en : 2000 caractères au plus / at most 2000"),
        ('purposes = "Partage de fichiers"', "(nuage) : purposes : liste de chaînes attendue / expected a list"),
        ("data_categories_en = [1, 2]", "(nuage) : data_categories_en : liste de chaînes attendue"),
        (f'purposes_en = ["{"x" * 201}"]', "[nuage] : purposes_en : 20 éléments de 200 caractères au plus / at most"),
        (f"data_categories = {['Nom'] * 21}", "data_categories : 20 éléments de 200 caractères au plus"),
    ],
)
def test_a_bad_description_is_refused_with_a_line_naming_the_entry_and_the_key(
    db: Database, unit_settings: Settings, tmp_path: Path, line: str, words: str
) -> None:
    path = write(tmp_path, SMALL.replace('scope = "central"\n', f'scope = "central"\n{line}\n', 1))
    with pytest.raises(FileError) as caught:
        sync(db, unit_settings, path)
    assert words in str(caught.value)
    assert db.call(lambda s: s.exec(select(Instance)).all()) == []


def test_sync_is_idempotent(db: Database, unit_settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    first = sync(db, unit_settings, path)
    assert first.created == 4 and len(first.secrets) == 2
    second = sync(db, unit_settings, path)
    assert (second.created, second.updated, second.retired, second.kept) == (0, 0, 0, 0)
    assert second.lines == [] and second.secrets == []
    assert second.summary("instances.toml") == "instances.toml : aucun changement / no changes"


def test_sync_reports_each_changed_field(db: Database, unit_settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    sync(db, unit_settings, path)
    write(
        tmp_path,
        SMALL.replace("https://nuage.example", "https://cloud.example").replace('name = "Coop"', 'name = "La Coop"'),
    )
    report = sync(db, unit_settings, path)
    assert "~ hoster coop : modifié / updated (name)" in report.lines
    changed = [line for line in report.lines if line.startswith("~ instance nuage")]
    assert changed and "base_url" in changed[0] and "redirect_uris" in changed[0] and "client" in changed[0]
    client = db.call(lambda s: clients.get_client(s, "nuage"))
    assert client is not None and client.redirect_uris[0] == "https://cloud.example/apps/user_oidc/code"


def test_removed_instances_are_only_reported_until_prune(db: Database, unit_settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    sync(db, unit_settings, path)
    without_forum = SMALL.split('[[instances]]\nslug = "forum"')[0]
    write(tmp_path, without_forum)
    kept = sync(db, unit_settings, path)
    assert kept.kept == 1 and kept.retired == 0
    assert any(line.startswith("! instance forum") and "--prune" in line for line in kept.lines)
    assert db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "forum")).one()).status == "active"

    pruned = sync(db, unit_settings, path, prune=True)
    assert pruned.retired == 1
    assert "- instance forum : retirée, client désactivé / retired, client disabled" in pruned.lines
    forum = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "forum")).one())
    assert forum.status == "retired"
    assert db.call(lambda s: clients.get_client(s, "forum")).disabled_at is not None  # type: ignore[union-attr]
    assert sync(db, unit_settings, path, prune=True).changed is False
    hosters = db.call(lambda s: s.exec(select(Hoster)).all())
    assert [h.slug for h in hosters] == ["coop"]  # never removed

    write(tmp_path, SMALL)
    back = sync(db, unit_settings, path)
    assert any(line.startswith("~ instance forum") and "status" in line for line in back.lines)
    assert db.call(lambda s: clients.get_client(s, "forum")).disabled_at is None  # type: ignore[union-attr]


def test_a_secret_from_the_environment_replaces_the_generated_one_and_follows_changes(
    db: Database, unit_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, SMALL)
    first = sync(db, unit_settings, path)
    assert "forum" in {slug for slug, _c, _s in first.secrets}
    assert any("ENCOMMUN_SECRET_FORUM absente" in line for line in first.lines)
    second = sync(db, unit_settings, path, env={"ENCOMMUN_SECRET_FORUM": "from-env-1"})
    assert any(line.startswith("~ instance forum") and "client_secret" in line for line in second.lines)
    assert second.secrets == []
    client = db.call(lambda s: clients.get_client(s, "forum"))
    assert client is not None and clients.verify_secret(client, "from-env-1")
    assert sync(db, unit_settings, path, env={"ENCOMMUN_SECRET_FORUM": "from-env-1"}).changed is False


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda t: t.replace('scope = "central"', 'scope = "central"\ncolour = "blue"'), "colour"),
        (lambda t: t.replace("ENCOMMUN_SECRET_FORUM", "PORTAIL_SECRET_FORUM"), "PORTAIL_"),
        (lambda t: t.replace('hoster = "coop"', 'hoster = "nobody"'), "nobody"),
        (lambda t: t.replace('software = "nextcloud"', 'software = "wordpress"'), "software"),
        (lambda t: t.replace('organization = "tiess"', 'organization = "ghost"'), "ghost"),
        (lambda t: t.replace('base_url = "https://forum.example"', 'base_url = "https://nuage.example"'), "base_url"),
        (lambda t: t.replace('slug = "forum"', 'slug = "nuage"'), "nuage"),
        (lambda t: t + "\n[[instances\n", "illisible"),
    ],
)
def test_an_invalid_file_is_refused_with_a_line_naming_the_entry(
    db: Database,
    unit_settings: Settings,
    tmp_path: Path,
    edit,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    path = write(tmp_path, edit(SMALL))
    with pytest.raises(FileError) as caught:
        sync(db, unit_settings, path)
    assert words in str(caught.value)
    assert db.call(lambda s: s.exec(select(Instance)).all()) == []


def test_cli_sync_prints_changes_and_secrets_once(
    unit_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (
        ("DATABASE_URL", unit_settings.database_url),
        ("VAR_DIR", unit_settings.var_dir),
        ("SECRET_KEY", unit_settings.secret_key),
        ("ISSUER", unit_settings.issuer),
    ):
        monkeypatch.setenv(f"PORTAIL_{name}", value)
    monkeypatch.setenv("PORTAIL_CONFIG", str(tmp_path / "absent.toml"))
    path = write(tmp_path, SMALL)
    assert cli.main(["instances", "sync", str(path)]) == 0
    out = capsys.readouterr().out
    assert "+ instance nuage : créée / created" in out
    assert "secret :" in out and "ne seront plus affichés" in out
    assert cli.main(["instances", "sync", str(path)]) == 0
    again = capsys.readouterr().out
    assert "aucun changement / no changes" in again and "secret :" not in again
    assert cli.main(["instances", "list", "--json"]) == 0
    assert '"slug": "forum"' in capsys.readouterr().out
    assert cli.main(["instances", "list"]) == 0
    assert "nuage\tactive\tnextcloud\thttps://nuage.example\tcoop\tdemo" in capsys.readouterr().out
    assert cli.main(["instances", "suspend", "forum", "--reason", "maintenance"]) == 0
    assert "suspended" in capsys.readouterr().out
    assert cli.main(["instances", "approve", "forum"]) == 1
    assert "Impossible" in capsys.readouterr().err
    actions = in_db(unit_settings, lambda s: [e.action for e in s.exec(select(AuditEvent))])
    assert "instance.suspended" in actions and actions.count("instance.file_created") == 2


def test_serve_start_syncs_the_file_and_prints_new_secrets_once(
    db: Database, unit_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = unit_settings.replace(instances_file=str(write(tmp_path, SMALL)))
    instances_file.sync_on_start(settings, db)
    first = capsys.readouterr().out
    assert first.count("secret :") == 2
    instances_file.sync_on_start(settings, db)
    assert "secret :" not in capsys.readouterr().out


def test_demo_is_a_boolean_key_and_the_repository_declares_its_demo_entries(
    tmp_path: Path, db: Database, unit_settings: Settings
) -> None:
    sync(db, unit_settings, REPO_FILE)
    demo = db.call(lambda s: {i.slug: i.demo for i in s.exec(select(Instance))})
    assert demo["passerelles"] is True and demo["praxis"] is False  # praxis: a demo by its .example name only
    wrong = write(tmp_path, SMALL.replace('scope = "central"', 'scope = "central"\ndemo = "oui"', 1))
    with pytest.raises(FileError, match="demo : true ou false"):
        sync(db, unit_settings, wrong)


def test_push_notifications_follows_the_software_or_the_file_and_sync_upgrades_existing_clients(
    db: Database, unit_settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, SMALL)
    sync(db, unit_settings, path)
    forum = db.call(lambda s: clients.get_client(s, "forum"))
    nuage = db.call(lambda s: clients.get_client(s, "nuage"))
    assert forum is not None and "client_credentials" in forum.grant_types and "notifications:push" in forum.scope
    assert nuage is not None and "client_credentials" not in nuage.grant_types

    write(tmp_path, SMALL.replace('software = "nextcloud"', 'software = "nextcloud"\npush_notifications = true'))
    report = sync(db, unit_settings, path)
    assert any(line.startswith("~ instance nuage") and "push_notifications" in line for line in report.lines)
    nuage = db.call(lambda s: clients.get_client(s, "nuage"))
    assert nuage is not None and "client_credentials" in nuage.grant_types and "notifications:push" in nuage.scope

    # A client provisioned before the grants existed (e.g. by an older Portail) is brought up to date.
    def downgrade(session) -> None:  # type: ignore[no-untyped-def]
        client = clients.get_client(session, "forum")
        assert client is not None
        client.grant_types, client.scope = ["authorization_code", "refresh_token"], "openid profile"
        session.add(client)

    db.call(downgrade)
    report = sync(db, unit_settings, path)
    assert any(line.startswith("~ instance forum") and "client" in line for line in report.lines)
    forum = db.call(lambda s: clients.get_client(s, "forum"))
    assert forum is not None and "client_credentials" in forum.grant_types

    write(tmp_path, SMALL.replace('software = "nextcloud"', 'software = "nextcloud"\npush_notifications = "oui"'))
    with pytest.raises(FileError, match="push_notifications"):
        sync(db, unit_settings, path)


def test_sync_upgrades_the_clients_of_hosters_nodes_that_push(
    db: Database, unit_settings: Settings, tmp_path: Path
) -> None:
    """A node approved before ``push_notifications`` existed: the migration gives Praxis ``true``,
    and the next ``portail instances sync`` (or ``portail serve``) gives its client the grant."""
    from portail.federation import nodes
    from portail.federation.rules import Actor
    from tests.federation_factories import add_hoster, add_instance

    add_hoster(unit_settings, "coop")
    add_instance(unit_settings, "notes", software="praxis", hoster="coop", status="awaiting-approval")
    db.call(lambda s: nodes.decide(s, unit_settings, Actor.cli(), "notes", "approve"))
    client_id = db.call(lambda s: s.exec(select(Instance).where(Instance.slug == "notes")).one().client_id)
    assert "client_credentials" not in db.call(lambda s: clients.get_client(s, client_id)).grant_types  # type: ignore[union-attr]

    def migrated(session) -> None:  # type: ignore[no-untyped-def]
        instance = session.exec(select(Instance).where(Instance.slug == "notes")).one()
        instance.push_notifications = True
        session.add(instance)

    db.call(migrated)
    report = sync(db, unit_settings, write(tmp_path, SMALL))
    assert "~ instance notes : droits du client mis à jour / client grants updated" in report.lines
    client = db.call(lambda s: clients.get_client(s, client_id))
    assert client is not None and "client_credentials" in client.grant_types
    assert sync(db, unit_settings, write(tmp_path, SMALL)).changed is False

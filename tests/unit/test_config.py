"""Settings: environment over portail.toml over defaults; bad values stop startup naming the setting."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from portail.config import SETTINGS_DOC, ConfigError, Settings, load_settings


def _load(tmp_path: Path, environ: dict[str, str] | None = None, toml: str | None = None) -> Settings:
    path = tmp_path / "portail.toml"
    if toml is not None:
        path.write_text(toml)
    env = {"PORTAIL_VAR_DIR": str(tmp_path / "var"), **(environ or {})}
    return load_settings(environ=env, toml_path=path)


def test_defaults_apply_without_file_or_environment(tmp_path: Path) -> None:
    settings = _load(tmp_path)
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'var' / 'portail.db').as_posix()}"
    assert settings.default_locale == "fr-CA"
    assert settings.secure_cookies is False


def test_environment_wins_over_file_which_wins_over_defaults(tmp_path: Path) -> None:
    toml = 'issuer = "https://file.example.org"\nsession_idle_minutes = 30\nmail_from = "file@example.org"\n'
    settings = _load(
        tmp_path, {"PORTAIL_ISSUER": "https://env.example.org", "PORTAIL_SESSION_IDLE_MINUTES": "45"}, toml
    )
    assert settings.issuer == "https://env.example.org"
    assert settings.session_idle_minutes == 45
    assert settings.mail_from == "file@example.org"
    assert settings.session_absolute_hours == Settings().session_absolute_hours
    assert settings.secure_cookies is True


def test_booleans_accept_the_usual_spellings(tmp_path: Path) -> None:
    assert _load(tmp_path, {"PORTAIL_OPEN_CLIENT_REGISTRATION": "oui"}).open_client_registration is True
    assert _load(tmp_path, {"PORTAIL_OPEN_CLIENT_REGISTRATION": "0"}).open_client_registration is False


@pytest.mark.parametrize(
    ("environ", "toml", "named"),
    [
        ({"PORTAIL_COLOUR": "blue"}, None, "PORTAIL_COLOUR"),
        ({}, "colour = 'blue'\n", "colour"),
        ({"PORTAIL_ISSUER": "not a url"}, None, "issuer"),
        ({"PORTAIL_ISSUER": "ftp://example.org"}, None, "issuer"),
        ({"PORTAIL_ISSUER": "https://example.org/"}, None, "issuer"),
        ({"PORTAIL_DATABASE_URL": "mysql://db/portail"}, None, "database_url"),
        ({"PORTAIL_SMTP_URL": "no-scheme"}, None, "smtp_url"),
        ({"PORTAIL_SESSION_IDLE_MINUTES": "ten"}, None, "session_idle_minutes"),
        ({}, "session_idle_minutes = true\n", "session_idle_minutes"),
        ({"PORTAIL_ARGON2_TIME_COST": "-1"}, None, "argon2_time_cost"),
        ({"PORTAIL_OPEN_CLIENT_REGISTRATION": "maybe"}, None, "open_client_registration"),
        ({"PORTAIL_DEFAULT_LOCALE": "de"}, None, "default_locale"),
        ({"PORTAIL_TIMEZONE": "Mars/Olympus_Mons"}, None, "timezone"),
        ({"PORTAIL_TIMEZONE": "../../etc/passwd"}, None, "timezone"),
        ({}, "issuer = \n", "portail.toml"),
        ({"PORTAIL_SMTP_URL": "smtp://[unclosed"}, None, "smtp_url"),
        ({"PORTAIL_REDIS_URL": "redis://[::1"}, None, "redis_url"),
        ({"PORTAIL_ISSUER": "https://[bad"}, None, "issuer"),
        ({"PORTAIL_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:notaport/x"}, None, "database_url"),
        ({"PORTAIL_BACKCHANNEL_POLL_SECONDS": "0"}, None, "backchannel_poll_seconds"),
        ({"PORTAIL_SIGNING_KEY_RELOAD_SECONDS": "0"}, None, "signing_key_reload_seconds"),
        # a lease no longer than one attempt's timeout would let a second process send a logout still in flight
        ({"PORTAIL_BACKCHANNEL_LEASE_SECONDS": "5"}, None, "backchannel_lease_seconds"),
        (
            {"PORTAIL_BACKCHANNEL_LEASE_SECONDS": "20", "PORTAIL_OUTBOUND_TIMEOUT_SECONDS": "30"},
            None,
            "backchannel_lease_seconds",
        ),
    ],
)
def test_bad_settings_raise_one_line_naming_the_setting(
    tmp_path: Path, environ: dict[str, str], toml: str | None, named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, environ, toml)
    message = str(raised.value)
    assert named in message
    assert "\n" not in message


def test_background_periods_of_the_provider_can_be_shortened_by_an_operator(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        {
            "PORTAIL_BACKCHANNEL_POLL_SECONDS": "0.5",
            "PORTAIL_SIGNING_KEY_RELOAD_SECONDS": "2",
            "PORTAIL_BACKCHANNEL_LEASE_SECONDS": "6",
        },
    )
    assert (settings.backchannel_poll_seconds, settings.signing_key_reload_seconds) == (0.5, 2.0)
    assert settings.backchannel_lease_seconds == 6 > settings.outbound_timeout_seconds
    defaults = _load(tmp_path)
    assert (defaults.backchannel_poll_seconds, defaults.signing_key_reload_seconds) == (5.0, 60.0)
    assert defaults.backchannel_lease_seconds == 60


def test_secret_key_is_generated_private_and_reused(tmp_path: Path) -> None:
    first = _load(tmp_path)
    key_file = tmp_path / "var" / "secret_key"
    assert len(first.secret_key) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _load(tmp_path).secret_key == first.secret_key


def test_explicit_secret_key_is_not_written(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"PORTAIL_SECRET_KEY": "s" * 40})
    assert settings.secret_key == "s" * 40
    assert not (tmp_path / "var" / "secret_key").exists()


def test_every_setting_is_documented_here_and_in_the_readme() -> None:
    names = {name for name in Settings.__dataclass_fields__ if name != "extra"}
    assert names == set(SETTINGS_DOC)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [name for name in names if f"`PORTAIL_{name.upper()}`" not in readme]
    assert not missing, f"settings missing from the README's Configuration table: {missing}"

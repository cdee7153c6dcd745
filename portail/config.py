"""Portail's settings: environment ``PORTAIL_*`` over ``portail.toml`` over defaults.

Settings are read once at startup into a frozen dataclass. Every setting is listed in
``SETTINGS_DOC`` below (the README's configuration table is generated from the same names), and an
unknown key, a malformed URL or a value of the wrong type stops startup with one readable line that
names the setting (``ConfigError``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """A setting is invalid; the message names it, in French then English."""


@dataclass(frozen=True)
class Settings:
    # -- where Portail lives
    issuer: str = "http://127.0.0.1:8000"
    database_url: str = ""  # default: sqlite under var_dir
    secret_key: str = ""  # default: generated once and kept in var_dir/secret_key
    database_threads: int = 0  # 0: 4 for SQLite, 16 for PostgreSQL
    redis_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "Portail En commun <portail@localhost>"
    instances_file: str = "./instances.toml"
    var_dir: str = "./var"
    # -- operations
    forwarded_allow_ips: str = "127.0.0.1"  # reverse proxies whose X-Forwarded-* headers are trusted
    metrics_token: str | None = None  # bearer token of /metrics; unset: loopback clients only
    # -- languages
    default_locale: str = "fr-CA"
    timezone: str = "America/Toronto"  # times on pages (stored in UTC)
    # -- accounts and sessions
    session_idle_minutes: int = 720
    session_absolute_hours: int = 336
    password_min_length: int = 10
    password_max_length: int = 1024
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 4
    password_hash_workers: int = 4
    login_failures_before_delay: int = 5
    login_max_delay_seconds: int = 900
    login_ip_failures_before_delay: int = 20
    verification_link_hours: int = 24
    reset_link_minutes: int = 60
    mail_limit_per_address: int = 3
    mail_limit_per_ip: int = 20
    mail_limit_window_minutes: int = 60
    terms_version: str = "2026-11"
    privacy_policy_version: str = "2026-11"
    create_admin_on_first_run: bool = True
    # -- Keycloak bridge: passwords of members imported from a realm, checked there once (portail/keycloak)
    keycloak_server_url: str | None = None
    keycloak_realm: str = ""
    keycloak_client_id: str = ""
    keycloak_client_secret: str = ""
    keycloak_timeout_seconds: float = 5.0
    mfa_required_for_admins: bool = True
    mfa_required_clients: str = ""  # space-separated client ids
    reauth_minutes: int = 10
    # -- OpenID Connect provider
    access_token_minutes: int = 10
    id_token_minutes: int = 60
    authorization_code_seconds: int = 60
    refresh_token_days: int = 30
    refresh_reuse_grace_seconds: int = 5
    open_client_registration: bool = False
    default_subject_type: str = "pairwise"
    signing_key_reload_seconds: float = 60.0
    backchannel_poll_seconds: float = 5.0
    backchannel_lease_seconds: int = 60
    # -- federation (hoster-supplied URLs are untrusted)
    allow_http_instances: bool = False
    allow_private_addresses: bool = False
    outbound_timeout_seconds: float = 5.0
    outbound_max_bytes: int = 1_000_000
    probe_interval_seconds: int = 300
    probe_concurrency: int = 10
    probe_failures_before_alert: int = 3
    probe_degraded_ms: int = 2000
    federation_charter_version: str = "2026-11"
    federation_unproven_days: int = 7
    secret_rotation_grace_hours: int = 24
    federation_charter_grace_days: int = 30
    # -- proof of control (DNS TXT or HTTP), re-checked: portail/federation/dns_proof.py, proof_recheck.py
    dns_resolvers: str = ""  # "9.9.9.9, [2620:fe::fe]:53"; empty: the system's resolvers
    dns_timeout_seconds: float = 5.0
    proof_recheck_hours: float = 24.0  # fractions allowed (a journey test re-checks every few seconds)
    proof_grace_days: float = 7.0
    # -- the federation as CHATONS StatoolInfos describes it (federation/chatons.py)
    federation_name: str = "Fédération En commun (Québec)"
    federation_id: str = "encommun"  # organization.memberof.<federation_id>.* in the hosters' files
    federation_contact_email: str = ""  # federation.contact.email; empty: the federation file is withheld
    federation_start_date: str = ""  # YYYY-MM-DD (federation.startdate); empty: the federation file is withheld
    api_token_max_days: int = 365
    # -- notifications
    inbox_budget_seconds: float = 1.5
    notification_retention_days: int = 90
    notification_refresh_seconds: int = 60
    notification_dormant_refresh_seconds: int = 86400
    notification_active_days: int = 7
    notification_pull_per_second: float = 20.0
    notification_pull_concurrency: int = 50
    notification_breaker_failures: int = 3
    notification_breaker_reset_seconds: int = 120
    notification_push_batch_max: int = 100
    notification_push_per_minute: int = 6000
    notification_push_gateway_check_source: bool = True
    # -- personal data
    deletion_grace_days: int = 30
    privacy_jobs_interval_seconds: int = 60
    account_event_max_attempts: int = 8
    # -- internal: not read from the environment
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @property
    def outbox_path(self) -> Path:
        return self.var_path / "outbox"

    @property
    def dns_nameservers(self) -> list[tuple[str, int]]:
        """``dns_resolvers`` as (address, port) pairs; raises ``ValueError`` on a malformed entry."""
        found: list[tuple[str, int]] = []
        for entry in self.dns_resolvers.replace(";", ",").split(","):
            entry = entry.strip()
            if not entry:
                continue
            if entry.startswith("["):
                address, _, rest = entry[1:].partition("]")
                port = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
            elif entry.count(":") == 1:
                address, port = entry.split(":")
            else:
                address, port = entry, ""
            checked = str(ipaddress.ip_address(address))
            number = int(port) if port else 53
            if not 0 < number < 65536:
                raise ValueError(entry)
            found.append((checked, number))
        return found

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTINGS_DOC: dict[str, str] = {
    "issuer": "Public base URL of Portail (OIDC issuer); https in production",
    "database_url": "SQLAlchemy URL; default sqlite:///<var_dir>/portail.db; PostgreSQL: postgresql+psycopg://…",
    "secret_key": "Signs cookies and links; generated into <var_dir>/secret_key when absent",
    "redis_url": "Optional Redis for cross-process state (rate limits, live fan-out, leadership)",
    "database_threads": "Threads running database work (0: 4 for SQLite, 16 for PostgreSQL)",
    "smtp_url": "Optional smtp://user:pass@host:port (smtps:// for TLS); without it mail goes to <var_dir>/outbox",
    "mail_from": "From header of the mail Portail sends",
    "instances_file": "TOML file declaring the En commun instances known at start",
    "var_dir": "Folder for the SQLite database, secret key, signing keys and outbox",
    "forwarded_allow_ips": "Reverse proxies (comma-separated addresses, or *) whose X-Forwarded-* are trusted",
    "metrics_token": "Bearer token required on /metrics; when unset, /metrics answers loopback clients only",
    "timezone": "Time zone of the times shown on pages (IANA name; stored times are UTC)",
    "default_locale": "Language of visitors without a preference (fr-CA or en)",
    "session_idle_minutes": "A session unused this long ends",
    "session_absolute_hours": "A session ends this long after login, used or not",
    "password_min_length": "Shortest password accepted",
    "password_max_length": "Longest password accepted",
    "argon2_time_cost": "argon2id iterations (hashes with older parameters are upgraded at next login)",
    "argon2_memory_cost_kib": "argon2id memory in KiB",
    "argon2_parallelism": "argon2id lanes",
    "password_hash_workers": "Concurrent password hashes (each holds argon2_memory_cost_kib of RAM)",
    "login_failures_before_delay": "Failed logins for one account before a growing delay applies",
    "login_max_delay_seconds": "Longest delay imposed after repeated failures",
    "login_ip_failures_before_delay": "Failed logins from one address before a growing delay applies",
    "verification_link_hours": "Lifetime of an email verification link",
    "reset_link_minutes": "Lifetime of a password reset link",
    "mail_limit_per_address": "Mails a stranger can trigger to one address per window (reset, sign-up, "
    "verification, invitation); further requests send nothing and the page is unchanged; 0 = off",
    "mail_limit_per_ip": "Mail-sending requests (reset, sign-up, verification, invitation) one client address "
    "may make per window; then HTTP 429; 0 = off",
    "mail_limit_window_minutes": "Window of the mail limits, in minutes",
    "terms_version": "Current terms-of-use version accepted at sign-up",
    "privacy_policy_version": "Current privacy-policy version accepted at sign-up and consent",
    "create_admin_on_first_run": "Create and print an administrator when the database has none",
    "keycloak_server_url": "Keycloak bridge: base URL of the Keycloak holding imported members' passwords (unset: off)",
    "keycloak_realm": "Keycloak bridge: realm of those members",
    "keycloak_client_id": "Keycloak bridge: confidential client with direct access grants only",
    "keycloak_client_secret": "Keycloak bridge: that client's secret",
    "keycloak_timeout_seconds": "Keycloak bridge: longest wait for the realm's token endpoint at a login",
    "mfa_required_for_admins": "Administrators, privacy officers and hoster administrators must enrol a second factor",
    "mfa_required_clients": "Space-separated client ids whose logins always need a second factor",
    "reauth_minutes": "Sensitive account changes need an authentication at most this many minutes old",
    "access_token_minutes": "Lifetime of JWT access tokens",
    "id_token_minutes": "Lifetime of ID tokens",
    "authorization_code_seconds": "Lifetime of authorization codes",
    "refresh_token_days": "Lifetime of refresh tokens",
    "refresh_reuse_grace_seconds": "Window in which a just-rotated refresh token may be presented again",
    "open_client_registration": "Allow dynamic client registration without an initial access token",
    "default_subject_type": "Subject type of new clients: pairwise (private by default) or public",
    "signing_key_reload_seconds": "Each process reloads the signing keys this often (and at once on an unknown kid); "
    "`portail keys rotate` lets a new key sign two such periods after publishing it",
    "backchannel_poll_seconds": "Interval at which the leader looks for due back-channel logouts (retries, "
    "and those of a process that died); a logout is sent at once by the process that ends the session",
    "backchannel_lease_seconds": "A back-channel logout being sent is left to its sender this long before another "
    "process may send it (the sender died); longer than outbound_timeout_seconds",
    "allow_http_instances": "Accept http:// base URLs from hosters (tests only)",
    "allow_private_addresses": "Accept hoster URLs resolving to loopback/private addresses (tests only)",
    "outbound_timeout_seconds": "Timeout of each outbound request to an instance",
    "outbound_max_bytes": "Most bytes read from an instance's answer",
    "probe_interval_seconds": "Interval between health probes of instances (0 turns the prober off)",
    "probe_concurrency": "Instances probed at once",
    "probe_degraded_ms": "An instance answering slower than this (milliseconds) is shown as degraded",
    "probe_failures_before_alert": "Consecutive failed probes before the instance's hoster is mailed",
    "federation_charter_version": "Version of the federation charter a hoster accepts when applying",
    "federation_charter_grace_days": "Days a hoster has to accept a new charter version before it is suspended",
    "secret_rotation_grace_hours": "Hours a node's previous client secret keeps working after a rotation",
    "federation_unproven_days": "Days after which a registration that never proved its domain expires (URL released)",
    "dns_resolvers": "Resolvers asked for DNS TXT proofs (comma-separated address[:port], IPv6 as [addr]:port); "
    "empty: the system's resolvers",
    "dns_timeout_seconds": "Longest wait for a DNS TXT proof's answer, retries included",
    "proof_recheck_hours": "Hours between re-checks of each node's proof of control (0 turns the re-check off)",
    "proof_grace_days": "Days a node's proof may stay lost (its hoster told) before the federation administrators are",
    "federation_name": "Name of the federation in its StatoolInfos file (federation.name)",
    "federation_id": "Identifier of the federation in the hosters' StatoolInfos files (organization.memberof.ID.*)",
    "federation_contact_email": "Contact address of the federation (federation.contact.email); required to publish",
    "federation_start_date": "Date the federation started, YYYY-MM-DD (federation.startdate); required to publish",
    "api_token_max_days": "Longest lifetime of a personal API token (days)",
    "inbox_budget_seconds": "Longest time the inbox waits for instances",
    "notification_retention_days": "Notifications older than this are purged",
    "notification_refresh_seconds": "A member's pulled sources older than this are refreshed (background and inbox)",
    "notification_dormant_refresh_seconds": (
        "Background refresh interval of members not seen for notification_active_days (dormant)"
    ),
    "notification_active_days": "Members seen within this many days are refreshed every notification_refresh_seconds",
    "notification_pull_per_second": "Most pull requests per second to one instance (per process)",
    "notification_pull_concurrency": "Sources pulled at once",
    "notification_breaker_failures": "Consecutive failures after which an instance's circuit breaker opens",
    "notification_breaker_reset_seconds": "Seconds an open breaker waits before one trial request (half-open)",
    "notification_push_batch_max": "Most notifications in one push request",
    "notification_push_per_minute": "Notifications one instance may push per minute",
    "notification_push_gateway_check_source": (
        "Refuse Matrix push-gateway calls whose address is not one of the linked homeserver's addresses"
    ),
    "deletion_grace_days": "Days between a deletion request and the purge",
    "privacy_jobs_interval_seconds": "Interval of the personal-data jobs (exports, purges, account events); 0 = off",
    "account_event_max_attempts": "Delivery attempts of an account event (SET) before it is marked failed",
}

_URL_SETTINGS = {"issuer": ("http", "https")}


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            value = str(raw).strip().lower()
            if value in {"1", "true", "yes", "on", "oui"}:
                return True
            if value in {"0", "false", "no", "off", "non", ""}:
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind in {"str | None"}:
            return None if raw in (None, "") else str(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Réglage {name} invalide ({raw!r}) / invalid setting {name}: expected {kind}") from exc


def _split_url(name: str, value: str) -> SplitResult:
    """``urlsplit``, with its ValueError (e.g. an unclosed ``[`` IPv6 host) as a one-line ConfigError."""
    try:
        return urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"Réglage {name} invalide ({value!r}) / invalid setting {name}: {exc}") from None


def _validate(settings: Settings) -> None:
    for name, schemes in _URL_SETTINGS.items():
        value = getattr(settings, name)
        parts = _split_url(name, value)
        if parts.scheme not in schemes or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                f"Réglage {name} invalide ({value!r}) : URL http(s) absolue attendue / "
                f"invalid setting {name}: an absolute http(s) URL is expected"
            )
        if value.endswith("/"):
            raise ConfigError(
                f"Réglage {name} invalide ({value!r}) : sans barre oblique finale / "
                f"invalid setting {name}: no trailing slash"
            )
    for name in ("redis_url", "smtp_url"):
        value = getattr(settings, name)
        if value is not None and not _split_url(name, value).scheme:
            raise ConfigError(f"Réglage {name} invalide ({value!r}) / invalid setting {name}: URL expected")
    if not settings.database_url.split(":", 1)[0].startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"Réglage database_url invalide ({settings.database_url!r}) : sqlite ou postgresql / "
            "invalid setting database_url: sqlite or postgresql expected"
        )
    try:
        _ = make_url(settings.database_url).port  # the port is parsed lazily
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"Réglage database_url invalide / invalid setting database_url: {str(exc).splitlines()[0]}"
        ) from None
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"Réglage timezone inconnu : {settings.timezone} / unknown time zone (setting timezone)"
        ) from None
    if settings.default_locale not in {"fr-CA", "en"}:
        raise ConfigError("Réglage default_locale invalide : fr-CA ou en / invalid setting default_locale")
    if settings.default_subject_type not in {"pairwise", "public"}:
        raise ConfigError(
            "Réglage default_subject_type invalide : pairwise ou public / invalid setting default_subject_type"
        )
    try:
        settings.dns_nameservers  # noqa: B018 -- parsed now so that a bad value stops startup
    except ValueError as exc:
        raise ConfigError(
            f"Réglage dns_resolvers invalide ({settings.dns_resolvers!r}) : adresses IP[:port] séparées par des "
            f"virgules / invalid setting dns_resolvers: comma-separated IP[:port] addresses ({exc})"
        ) from None
    _validate_federation(settings)
    _validate_periods(settings)
    positive = [f.name for f in dataclasses.fields(settings) if f.type in ("int", "float")]
    for name in positive:
        if getattr(settings, name) < 0:
            raise ConfigError(f"Réglage {name} négatif / setting {name} must not be negative")


def _validate_periods(settings: Settings) -> None:
    """Periods of the provider's background work: never zero, and a lease outlasting one attempt."""
    for name in ("signing_key_reload_seconds", "backchannel_poll_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"Réglage {name} : doit être positif / setting {name} must be positive")
    if settings.backchannel_lease_seconds <= settings.outbound_timeout_seconds:
        raise ConfigError(
            "Réglage backchannel_lease_seconds : doit dépasser outbound_timeout_seconds, sinon une déconnexion "
            "encore en cours d’envoi serait envoyée deux fois / setting backchannel_lease_seconds must exceed "
            "outbound_timeout_seconds, or a logout still being sent would be sent twice"
        )


def _validate_federation(settings: Settings) -> None:
    """The federation's StatoolInfos identity: a slug id, an address, an ISO date (or empty)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", settings.federation_id):
        raise ConfigError("Réglage federation_id invalide : minuscules, chiffres, - / invalid setting federation_id")
    email = settings.federation_contact_email
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise ConfigError(f"Réglage federation_contact_email invalide ({email!r}) / invalid federation_contact_email")
    if settings.federation_start_date:
        try:
            dt.date.fromisoformat(settings.federation_start_date)
        except ValueError:
            raise ConfigError(
                "Réglage federation_start_date invalide : AAAA-MM-JJ / invalid setting federation_start_date"
            ) from None


def _secret_key(var_dir: Path) -> str:
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings(
    environ: dict[str, str] | None = None, toml_path: str | Path | None = None, **overrides: Any
) -> Settings:
    """Build the settings: defaults < portail.toml < PORTAIL_* environment < explicit overrides."""
    environ = dict(os.environ if environ is None else environ)
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
    values: dict[str, Any] = {}

    path = Path(toml_path or environ.get("PORTAIL_CONFIG", "portail.toml"))
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Fichier {path} illisible / unreadable config file {path}: {exc}") from exc
        for key, raw in data.items():
            if key not in fields:
                raise ConfigError(f"Réglage inconnu {key} dans {path} / unknown setting {key} in {path}")
            values[key] = _coerce(key, raw, fields[key].type)

    for env_key, raw in environ.items():
        # PORTAIL_TEST_* variables belong to the test suite (database admin URL, Synapse install), not Portail.
        if not env_key.startswith("PORTAIL_") or env_key == "PORTAIL_CONFIG" or env_key.startswith("PORTAIL_TEST_"):
            continue
        key = env_key.removeprefix("PORTAIL_").lower()
        if key not in fields:
            raise ConfigError(f"Réglage inconnu {env_key} / unknown setting {env_key}")
        values[key] = _coerce(key, raw, fields[key].type)

    values.update(overrides)
    settings = Settings(**values)
    var_dir = settings.var_path
    if not settings.database_url:
        settings = settings.replace(database_url=f"sqlite:///{(var_dir / 'portail.db').as_posix()}")
    if not settings.secret_key:
        settings = settings.replace(secret_key=_secret_key(var_dir))
    _validate(settings)
    return settings

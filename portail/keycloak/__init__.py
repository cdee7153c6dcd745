"""The bridge to existing Keycloak realms (python-keycloak): importing a realm's members
(``realm_import``), checking a migrated member's password once against the realm (``bridge``), and
linking Portail as a realm's upstream identity provider (``realm_link``). Commands in ``commands``."""

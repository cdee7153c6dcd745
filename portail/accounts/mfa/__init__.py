"""Second factors of a member: authenticator apps (TOTP, ``totp.py``), passkeys and security keys
(WebAuthn, ``webauthn.py``), recovery codes (``recovery.py``); what a member has enrolled
(``factors.py``) and when a fresh or stronger authentication is required (``step_up.py``)."""

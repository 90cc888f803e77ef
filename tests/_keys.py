"""Keyring constants for tests (the real scrypt default costs ~0.1 s a derivation)."""

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 2**10

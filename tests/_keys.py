"""Keyring constants for tests (the real scrypt default costs ~0.5 s a derivation)."""

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 2**14  # the lowest a keyring may ask for

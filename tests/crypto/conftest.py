from tests._keys import FAST_SCRYPT, PASSPHRASE

__all__ = ["FAST_SCRYPT", "PASSPHRASE"]

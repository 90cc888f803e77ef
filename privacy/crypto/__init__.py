"""Key material: the provider boundary and purpose-bound key derivation."""

from privacy.crypto._provider import (
    EnvKeyProvider,
    KeyProvider,
    StaticKeyProvider,
    derive_subkey,
)

__all__ = ["EnvKeyProvider", "KeyProvider", "StaticKeyProvider", "derive_subkey"]

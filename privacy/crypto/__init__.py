"""Keys and sealed files: the provider boundaries, the local keyring, and AES-256-GCM
streaming envelope encryption at rest. The signer interface the keyring implements is
:mod:`privacy.integrity`'s."""

from privacy.crypto._keyring import (
    SCOPES,
    Keyring,
    passphrase_weakness,
    read_public_signing_key,
    trusted_key,
)
from privacy.crypto._provider import (
    EnvKeyProvider,
    KeyEncryptionProvider,
    KeyProvider,
    StaticKeyProvider,
    derive_subkey,
    key_id,
    pseudonym_provider,
)
from privacy.crypto._sealed import (
    SealedWriter,
    is_sealed,
    open_sealed,
    read_header,
    rewrap_file,
    seal_bytes,
    seal_file,
    unseal_bytes,
    unseal_file,
)

__all__ = [
    "SCOPES",
    "EnvKeyProvider",
    "KeyEncryptionProvider",
    "KeyProvider",
    "Keyring",
    "SealedWriter",
    "StaticKeyProvider",
    "derive_subkey",
    "is_sealed",
    "key_id",
    "open_sealed",
    "passphrase_weakness",
    "pseudonym_provider",
    "read_public_signing_key",
    "read_header",
    "rewrap_file",
    "seal_bytes",
    "seal_file",
    "trusted_key",
    "unseal_bytes",
    "unseal_file",
]

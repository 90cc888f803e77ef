"""Keys and sealed files: the provider boundaries, the local keyring, and AES-256-GCM
streaming envelope encryption at rest."""

from privacy.crypto._keyring import (
    SCRYPT_N,
    KekInfo,
    Keyring,
    read_public_signing_key,
    signing_key_id,
)
from privacy.crypto._provider import (
    MIN_KEY_BYTES,
    EnvKeyProvider,
    KeyEncryptionProvider,
    KeyProvider,
    Signer,
    StaticKeyProvider,
    derive_subkey,
    key_id,
)
from privacy.crypto._sealed import (
    DEFAULT_SEGMENT_SIZE,
    MAGIC,
    SealedHeader,
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
    "DEFAULT_SEGMENT_SIZE",
    "MAGIC",
    "MIN_KEY_BYTES",
    "SCRYPT_N",
    "EnvKeyProvider",
    "KekInfo",
    "KeyEncryptionProvider",
    "KeyProvider",
    "Keyring",
    "SealedHeader",
    "SealedWriter",
    "Signer",
    "StaticKeyProvider",
    "derive_subkey",
    "is_sealed",
    "key_id",
    "open_sealed",
    "read_public_signing_key",
    "read_header",
    "rewrap_file",
    "seal_bytes",
    "seal_file",
    "signing_key_id",
    "unseal_bytes",
    "unseal_file",
]

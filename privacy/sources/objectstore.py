"""S3-compatible object storage: inputs read from ``s3://bucket/key`` and a run's
published artifacts written to ``s3://bucket/prefix/``, through fsspec's ``s3fs``.

Credentials come from the usual places (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, the instance role); ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``)
points at an S3-compatible store. An input object is read into memory: a sealed one is
opened there (verified), never written to a plaintext temporary file. Uploads stream
local files (already sealed where the policy seals them) in multipart chunks, in bounded
memory. Errors name the URL and what is wrong (no such bucket, no such object, access
denied), never a credential.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from privacy.errors import InputError, KeyAccessError, OutputError, PrivpipeError

__all__ = [
    "check_object",
    "download_bytes",
    "is_object_url",
    "object_url",
    "upload_artifacts",
    "upload_file",
]

_SCHEMES = ("s3://",)


def object_url(value: str | Path | None) -> str | None:
    """``value`` as an ``s3://`` URL if it is one (a :class:`~pathlib.Path` made of one
    has lost a slash: ``s3:/bucket/key``), else None."""
    if value is None:
        return None
    text = str(value)
    if text.startswith(_SCHEMES):
        return text
    if text.startswith("s3:/") and not text.startswith("s3://"):
        return "s3://" + text[len("s3:/") :]
    return None


def is_object_url(value: str | Path | None) -> bool:
    return object_url(value) is not None


def _filesystem() -> Any:
    import s3fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client: dict[str, Any] = {"endpoint_url": endpoint} if endpoint else {}
    # no listing cache: a run reads what is there now
    return s3fs.S3FileSystem(
        client_kwargs=client, use_listings_cache=False, skip_instance_cache=True
    )


def _bucket(url: str) -> str:
    return url[len("s3://") :].split("/", 1)[0]


def _error(exc: BaseException, url: str, *, writing: bool = False) -> PrivpipeError:
    kind = OutputError if writing else InputError
    text = f"{type(exc).__name__} {exc}".lower()
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not code:
        inner = getattr(cause, "response", None)
        if isinstance(inner, dict):
            code = str(inner.get("Error", {}).get("Code", ""))
    if code == "NoSuchBucket" or "nosuchbucket" in text or "bucket does not exist" in text:
        return kind(f"{url}: bucket {_bucket(url)} does not exist")
    if (
        isinstance(exc, PermissionError)
        or code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch")
        or "access denied" in text
        or "forbidden" in text
    ):
        return KeyAccessError(
            f"{url}: access denied (check the credentials in AWS_ACCESS_KEY_ID / "
            "AWS_PROFILE and the bucket's policy)"
        )
    if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "404"):
        return kind(f"{url}: no such object")
    return kind(f"{url}: the object store refused it ({type(exc).__name__})")


def _head_bucket(fs: Any, url: str, *, writing: bool = False) -> None:
    """The bucket is there and these credentials may use it (HEAD bucket: 404 or 403)."""
    kind = OutputError if writing else InputError
    try:
        fs.call_s3("head_bucket", Bucket=_bucket(url))
    except FileNotFoundError:
        raise kind(f"{url}: bucket {_bucket(url)} does not exist") from None


def download_bytes(url: str) -> bytes:
    """The whole object at ``url``, in memory."""
    fs = _filesystem()
    try:
        _head_bucket(fs, url)
        with fs.open(url, "rb") as handle:
            data: bytes = handle.read()
    except PrivpipeError:
        raise
    except Exception as exc:  # botocore and aiobotocore raise many kinds
        raise _error(exc, url) from None
    if not data:
        raise InputError(f"{url}: input object is empty")
    return data


def upload_file(local: Path, url: str, *, chunk: int = 8 << 20) -> None:
    """Stream ``local`` to ``url`` in ``chunk``-sized parts (bounded memory)."""
    fs = _filesystem()
    try:
        _head_bucket(fs, url, writing=True)
        with (
            Path(local).open("rb") as source,
            fs.open(url, "wb", block_size=max(chunk, 5 << 20)) as sink,
        ):
            while block := source.read(chunk):
                sink.write(block)
    except PrivpipeError:
        raise
    except Exception as exc:
        raise _error(exc, url, writing=True) from None


def check_object(url: str) -> None:
    """Raise the one-line error for an object that cannot be read (no bucket, no key,
    access denied); read nothing (a run checks this before Prefect starts)."""
    fs = _filesystem()
    try:
        _head_bucket(fs, url)
        fs.info(url)
    except PrivpipeError:
        raise
    except Exception as exc:  # botocore and aiobotocore raise many kinds
        raise _error(exc, url) from None


def upload_artifacts(folder: Path, names: list[str], url: str) -> list[str]:
    """Upload ``folder``'s files ``names`` (those present) under the prefix ``url``;
    returns their object URLs."""
    done = []
    for name in names:
        local = Path(folder) / name
        if local.is_file():
            target = f"{url.rstrip('/')}/{name}"
            upload_file(local, target)
            done.append(target)
    return done

"""The ``privpipe`` command line.

Commands import what they need when they run: ``privpipe --help``, ``policy`` and
``synth`` never load Prefect, Presidio or torch. Exit status: 0 success, 2 a user error
(one ``error:`` line on stderr naming the file, row, column or policy key), 3 a failed
integrity check, 1 an internal error. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="privpipe",
    help="Turn raw personal data into data that is safe to use, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
policy_app = typer.Typer(
    help="Validate policies and export their JSON Schema.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(
    help="Manage a keyring: key-encryption keys (rotated) and the pseudonym secret.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Verify and read audit trails.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

_STATE: dict[str, bool] = {"debug": False, "verbose": False, "json": False}
DEFAULT_DEMO_DIR = Path("demo-output")
DEMO_PASSPHRASE = "privpipe-demo-only"


def _version(value: bool) -> None:
    if value:
        from privacy import __version__

        typer.echo(f"privpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _STATE["debug"] = debug
    _STATE["verbose"] = verbose


def _err(message: str) -> None:
    typer.echo(message, err=True)


# --------------------------------------------------------------------------- policy


@policy_app.command("schema")
def policy_schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of a policy file."""
    from privacy.io import atomic_write_bytes
    from privacy.policy import policy_json_schema

    text = json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_bytes(out, text.encode("utf-8"))
        _err(f"wrote {out}")


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a policy; print its name, canonical hash and rules."""
    from privacy.policy import load_policy

    policy = load_policy(file)
    rules: dict[str, int] = {}
    for spec in policy.columns.values():
        rules[spec.rule] = rules.get(spec.rule, 0) + 1
    if as_json:
        typer.echo(
            json.dumps({"status": "ok", "name": policy.name, "sha256": policy.hash, "rules": rules})
        )
        return
    summary = ", ".join(f"{n} {r}" for r, n in sorted(rules.items()))
    typer.echo(f"{file}: ok — policy {policy.name!r}, {len(policy.columns)} columns ({summary})")
    typer.echo(f"sha256 {policy.hash}")


# --------------------------------------------------------------------------- keys

PASSPHRASE_ENV = "PRIVPIPE_PASSPHRASE"
_DEMO_PASSPHRASES: dict[Path, str] = {}  # only `privpipe demo` puts anything here
KeyringOption = Annotated[
    Path,
    typer.Option(
        "--keyring",
        "-k",
        envvar="PRIVPIPE_KEYRING",
        help="Keyring file (or set PRIVPIPE_KEYRING).",
    ),
]


def _passphrase(keyring: Path, *, confirm: bool = False) -> str:
    """From PRIVPIPE_PASSPHRASE, else an interactive prompt; never from an argument."""
    value = os.environ.get(PASSPHRASE_ENV) or _DEMO_PASSPHRASES.get(keyring.resolve())
    if value:
        return value
    if not sys.stdin.isatty():
        from privacy.errors import KeyAccessError

        raise KeyAccessError(
            f"{keyring}: a passphrase is needed: set {PASSPHRASE_ENV} or run in a terminal"
        )
    text: str = typer.prompt(
        f"Passphrase for {keyring}", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return text


def _open_keyring(path: Path) -> Any:
    from privacy.crypto import Keyring

    return Keyring.open(path, _passphrase(path))


@keys_app.command("init")
def keys_init(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Create a keyring (mode 0600) with one active key-encryption key."""
    from privacy.crypto import Keyring

    ring = Keyring.create(keyring, _passphrase(keyring, confirm=True))
    _audit_key_op(
        ring,
        audit,
        "keys.init",
        params={
            "kek_id": ring.active_kek_id,
            "pseudonym_key_id": ring.pseudonym_key_id,
            "signing_key_id": ring.signing_key_id,
        },
    )
    typer.echo(
        f"created {keyring}: active key {ring.active_kek_id}, pseudonym key {ring.pseudonym_key_id}"
    )


@keys_app.command("list")
def keys_list(
    keyring: KeyringOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List key ids, creation times and which key is active (never key bytes)."""
    ring = _open_keyring(keyring)
    keys = [{"id": k.id, "created": k.created, "active": k.active} for k in ring.list_keys()]
    signing = {"id": ring.signing_key_id, "public_key": ring.signing_public_key.hex()}
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "keyring": str(keyring),
                    "keys": keys,
                    "pseudonym_key_id": ring.pseudonym_key_id,
                    "signing": signing,
                }
            )
        )
        return
    for key in keys:
        typer.echo(f"{key['id']}  {key['created']}  {'active' if key['active'] else ''}".rstrip())
    typer.echo(f"pseudonym key {ring.pseudonym_key_id}")
    typer.echo(f"audit signing key {signing['id']}  public {signing['public_key']}")


@keys_app.command("rotate")
def keys_rotate(keyring: KeyringOption, audit: AuditOption = None) -> None:
    """Add a new active key-encryption key; older keys stay for decryption."""
    ring = _open_keyring(keyring)
    old = ring.active_kek_id
    new = ring.rotate()
    _audit_key_op(ring, audit, "keys.rotate", params={"from": old, "to": new.id})
    typer.echo(f"rotated {keyring}: active key {new.id} (was {old}); run `privpipe keys rewrap`")


@keys_app.command("rewrap")
def keys_rewrap(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Sealed files.")],
    keyring: KeyringOption,
    audit: AuditOption = None,
) -> None:
    """Re-wrap sealed files' data keys under the active key, without re-encrypting them."""
    from privacy.crypto import rewrap_file

    ring = _open_keyring(keyring)
    moved: dict[str, str] = {}
    try:
        for path in files:
            old, new = rewrap_file(path, ring)
            moved[str(path)] = f"{old} -> {new}"
            typer.echo(f"{path}: {'already under ' + new if old == new else old + ' -> ' + new}")
    except Exception as exc:
        _audit_key_op(
            ring,
            audit,
            "keys.rewrap",
            outcome="failed",
            error=type(exc).__name__,
            params={"files": moved},
        )
        raise
    _audit_key_op(ring, audit, "keys.rewrap", params={"files": moved})


def _pairs(values: list[str], option: str) -> dict[str, str]:
    from privacy.errors import PrivpipeError

    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise PrivpipeError(f"{option} {value!r}: expected KEY=VALUE")
        pairs[key] = val
    return pairs


@app.command()
def encrypt(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Plaintext file.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Sealed file to write.")],
    keyring: KeyringOption,
    ad: Annotated[
        list[str] | None,
        typer.Option("--ad", help="Associated data KEY=VALUE bound to the file (repeatable)."),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Seal a file: AES-256-GCM segments under a fresh data key wrapped by the keyring."""
    from privacy.crypto import seal_file
    from privacy.errors import InputError
    from privacy.hashing import sha256_file

    if not source.is_file():
        raise InputError(f"{source}: input file not found")
    ring = _open_keyring(keyring)
    header = seal_file(source, target, ring, _pairs(ad or [], "--ad"))
    _audit_key_op(
        ring,
        audit,
        "encrypt",
        inputs={"sha256": sha256_file(source)},
        outputs={"sha256": sha256_file(target)},
        params={"kek_id": header.kek_id},
    )
    typer.echo(f"sealed {source} -> {target} (key {header.kek_id})")


@app.command()
def decrypt(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Sealed file.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Plaintext file to write.")],
    keyring: KeyringOption,
    expect: Annotated[
        list[str] | None,
        typer.Option("--expect", help="Require associated data KEY=VALUE (repeatable)."),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Unseal a file; every segment is verified, and nothing is written if one fails."""
    from privacy.crypto import unseal_file
    from privacy.errors import InputError
    from privacy.hashing import sha256_file

    if not source.is_file():
        raise InputError(f"{source}: input file not found")
    ring = _open_keyring(keyring)
    try:
        unseal_file(source, target, ring, expected=_pairs(expect or [], "--expect") or None)
    except Exception as exc:
        _audit_key_op(
            ring,
            audit,
            "decrypt",
            outcome="failed",
            error=type(exc).__name__,
            inputs={"sha256": sha256_file(source)},
        )
        raise
    _audit_key_op(
        ring,
        audit,
        "decrypt",
        inputs={"sha256": sha256_file(source)},
        params={"output": str(target)},
    )
    typer.echo(f"unsealed {source} -> {target}")


# --------------------------------------------------------------------------- audit

AuditOption = Annotated[
    Path | None,
    typer.Option(
        "--audit",
        envvar="PRIVPIPE_AUDIT",
        help="Audit trail to append to (default: audit.jsonl in the output folder, or "
        "beside the keyring for key operations).",
    ),
]


def _audit_key_op(ring: Any, audit: Path | None, step: str, **fields: Any) -> None:
    """Record a key operation in the keyring's trail (or --audit), signed at once."""
    from privacy.audit import AuditTrail

    trail_path = audit or ring.path.parent / "audit.jsonl"
    with AuditTrail(trail_path, ring, context={"run_id": None, "flow": "keys"}) as trail:
        trail.append(step, **fields)


@audit_app.command("verify")
def audit_verify(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    keyring: Annotated[
        Path | None,
        typer.Option(
            "--keyring",
            "-k",
            envvar="PRIVPIPE_KEYRING",
            help="Keyring whose public signing key is trusted (no passphrase needed).",
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="Trusted Ed25519 public key (hex), given out of band."),
    ] = None,
) -> None:
    """Check every hash, link and signature. Exit 0 if intact, 3 naming the first bad line."""
    from privacy.audit import verify_trail
    from privacy.crypto import read_public_signing_key
    from privacy.errors import KeyAccessError

    if public_key:
        try:
            trusted = bytes.fromhex(public_key)
        except ValueError:
            raise KeyAccessError("--public-key: not a hex string") from None
    elif keyring is not None:
        trusted = read_public_signing_key(keyring)[1]
    else:
        raise KeyAccessError("audit verify needs the trusted key: --keyring K or --public-key HEX")
    summary = verify_trail(path, trusted)
    typer.echo(
        f"{path}: intact: {summary.records} records ({summary.steps} steps, "
        f"{summary.failed_steps} failed; {summary.checkpoints} signed checkpoints), "
        f"{len(summary.runs)} runs, head {summary.head[:16]}…, signer {summary.signer}"
    )


@audit_app.command("show")
def audit_show(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest run).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Print one run's steps as a table (not a verification: use `audit verify`)."""
    from privacy.audit import read_trail
    from privacy.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: audit trail not found")
    records = read_trail(path)
    if run is None:
        runs = [r["run_id"] for r in records if r.get("run_id")]
        run = runs[-1] if runs else None
    chosen = [r for r in records if r.get("run_id") == run]
    if not chosen:
        raise InputError(f"{path}: no records of run {run}")
    if as_json:
        typer.echo(json.dumps(chosen, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    first = chosen[0]
    policy = first.get("policy") or {}
    table = Table(
        title=f"run {run} ({first.get('flow', '')}) on {first['time'][:10]}",
        caption=(
            f"policy {policy.get('id')} sha256 {str(policy.get('sha256', ''))[:16]}…, "
            if policy
            else ""
        )
        + f"by {first['actor']['user']}@{first['actor']['host']}",
    )
    for column in ("seq", "time", "step", "outcome", "error", "rows in", "rows out", "seconds"):
        numeric = column in ("seq", "rows in", "rows out", "seconds")
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric or column == "time"
        )
    width = None if sys.stdout.isatty() else 120  # pipes and files get the whole table
    for r in chosen:
        counts = r.get("counts", {})
        table.add_row(
            str(r["seq"]),
            r["time"][11:19],
            r["step"],
            r["outcome"],
            r.get("error") or "",
            _fmt(counts.get("rows_in")),
            _fmt(counts.get("rows_out")),
            _fmt(r.get("duration_s")),
        )
    Console(width=width).print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return (
        f"{value:,}"
        if isinstance(value, int)
        else f"{value:.3f}"
        if isinstance(value, float)
        else str(value)
    )


# --------------------------------------------------------------------------- detection


@app.command()
def scan(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="CSV, Parquet or JSON Lines.")
    ],
    policy: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Read and detect as this policy says.")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", min=1, help="Rows sampled per column.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    suggest: Annotated[
        Path | None,
        typer.Option("--suggest-policy", metavar="OUT.yaml", help="Write a draft policy."),
    ] = None,
    keyring: Annotated[
        Path | None,
        typer.Option("--keyring", "-k", envvar="PRIVPIPE_KEYRING", help="For a sealed INPUT."),
    ] = None,
) -> None:
    """Classify each column from a sample with Presidio: entity, share, confidence.

    Never prints a value from the data."""
    from privacy.detect import TextScanner, classify_columns, suggest_policy
    from privacy.io import read_frame, read_input
    from privacy.policy import load_policy

    ring = _open_keyring(keyring) if keyring is not None and keyring.exists() else None
    if policy is not None:
        loaded = load_policy(policy)
        frame = read_input(input_path, loaded, ring)
        scanner = TextScanner.from_policy(loaded.detection)
    else:
        frame = read_frame(input_path, keys=ring)
        scanner = TextScanner()
    findings = classify_columns(frame, scanner, sample=sample)
    if suggest is not None:
        import yaml

        from privacy.io import atomic_write_bytes
        from privacy.policy import policy_from_dict

        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", input_path.name.split(".")[0]) or "draft"
        draft = suggest_policy(name, findings)
        policy_from_dict(draft)  # a draft that does not validate is a bug, not a draft
        header = f"# Draft policy from `privpipe scan {input_path.name}`: review every rule.\n"
        atomic_write_bytes(suggest, (header + yaml.safe_dump(draft, sort_keys=False)).encode())
        _err(f"wrote draft policy {suggest}")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "input": str(input_path),
                    "rows": frame.height,
                    "columns": [f.to_dict() for f in findings],
                }
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{input_path}: {frame.height:,} rows, {min(sample, frame.height):,} sampled"
    )
    for column in ("column", "type", "kind", "entity", "share", "confidence", "name hint"):
        table.add_column(column, justify="right" if column in ("share", "confidence") else "left")
    for f in findings:
        table.add_row(
            f.column,
            f.dtype,
            f.kind,
            f.entity or "",
            f"{f.share:.0%}" if f.entity else "",
            f"{f.confidence:.2f}" if f.entity else "",
            f.hint or "",
        )
    Console(width=None if sys.stdout.isatty() else 120).print(table)


@app.command("detect-text")
def detect_text(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT.jsonl", help='Lines {"id": ..., "text": ...}.')
    ],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="OUT.jsonl", help="Spans per line.")],
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Minimum score.")
    ] = 0.5,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Texts per batch.")] = 256,
) -> None:
    """Find PII spans in a text corpus: {"id", "spans": [{"start", "end", "entity_type",
    "score"}]} per line, Python character offsets, end exclusive."""
    from privacy.detect import TextScanner
    from privacy.errors import InputError
    from privacy.io import atomic_path

    ids, texts = _read_corpus(input_path)
    scanner = TextScanner(threshold=threshold)
    from rich.progress import Progress

    with (
        Progress(transient=True, console=_stderr_console()) as progress,
        atomic_path(out) as tmp,
        tmp.open("wb") as sink,
    ):
        task = progress.add_task("detecting", total=len(texts))
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            for ident, spans in zip(ids[start : start + batch], scanner.scan(chunk), strict=True):
                line = {"id": ident, "spans": [s.to_dict() for s in spans]}
                sink.write(json.dumps(line).encode() + b"\n")
            progress.advance(task, len(chunk))
    if not texts:
        raise InputError(f"{input_path}: no lines")  # pragma: no cover - caught in _read_corpus
    _err(f"wrote {out}: {len(texts):,} texts")


def _read_corpus(path: Path) -> tuple[list[Any], list[str]]:
    from privacy.errors import InputError
    from privacy.io import iter_json_lines

    if not path.is_file():
        raise InputError(f"{path}: input file not found")
    ids: list[Any] = []
    texts: list[str] = []
    for number, line in iter_json_lines(path, path):
        if not isinstance(line.get("text"), str):
            raise InputError(f'{path}: line {number}: expected {{"id": ..., "text": "..."}}')
        ids.append(line.get("id"))
        texts.append(line["text"])
    if not texts:
        raise InputError(f"{path}: no lines")
    return ids, texts


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# --------------------------------------------------------------------------- synth


@app.command()
def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .csv, .parquet or .jsonl.")
    ],
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, help="Number of people.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same file.")] = 0,
    keyring: Annotated[
        Path | None,
        typer.Option("--keyring", "-k", envvar="PRIVPIPE_KEYRING", help="Seal a .sealed output."),
    ] = None,
) -> None:
    """Make synthetic raw personal data shaped like UCI Adult (deterministic per seed).

    Name the output ``people.csv.sealed`` (with --keyring) to seal it at rest."""
    from privacy.io import SEALED_SUFFIX, detect_format, plain_name, write_frame
    from privacy.synth import synthesize

    detect_format(plain_name(out))
    ring = None
    if out.suffix == SEALED_SUFFIX:
        if keyring is None:
            from privacy.errors import KeyAccessError

            raise KeyAccessError(f"{out}: writing a sealed file needs --keyring")
        ring = _open_keyring(keyring)
    started = time.perf_counter()
    frame = synthesize(rows, seed)
    write_frame(frame, out, keys=ring, associated_data={"artifact": "synthetic"})
    _err(f"wrote {rows:,} rows to {out} in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------- sanitize


def _check_run_inputs(
    input_path: Path, policy_file: Path, out: Path, overwrite: bool, keyring: Path | None
) -> Path:
    """Fail fast, before Prefect starts, on what can be checked without reading data;
    unlock the keyring (asking for its passphrase if need be). Returns its path."""
    from flows import _keys
    from privacy.errors import InputError, OutputError
    from privacy.io import detect_format, plain_name
    from privacy.policy import load_policy
    from privacy.stages import check_supported
    from privacy.transform import operators_for

    policy = load_policy(policy_file)
    check_supported(policy)
    if not input_path.exists():
        raise InputError(f"{input_path}: input file not found")
    detect_format(plain_name(input_path), policy.input.format)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: output folder exists and is not empty (use --overwrite)")
    ring_path = _keys.resolve_keyring_path(keyring, policy)
    ring = _open_keyring(ring_path)
    _keys.register(ring)
    if any(op.uses_key() for op in operators_for(policy)):
        _keys.pseudonym_provider(policy, ring).pseudonym_key()
    return ring_path


def _run_sanitize(
    input_path: Path,
    policy_file: Path,
    out: Path,
    keyring: Path,
    overwrite: bool,
    quiet: bool,
    audit: Path | None = None,
) -> dict[str, Any]:
    from flows._prefect_env import configure_prefect

    configure_prefect("INFO" if _STATE["verbose"] else "CRITICAL")
    import threading

    from privacy.detect import analyzer

    # Load the spaCy model while Prefect's temporary server starts (both take seconds);
    # the detect task then finds the engine built.
    threading.Thread(target=analyzer, name="privpipe-nlp-warmup", daemon=True).start()
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("starting Prefect (embedded)…", spinner="dots") as status:
        from flows import sanitize

        started = time.perf_counter()

        def progress(record: dict[str, Any]) -> None:
            if quiet:
                return
            note = "" if record["status"] == "ok" else f" [{record['status']}]"
            console.print(
                f"  ✓ {record['stage']:<10} {record['rows_out']:>10,} rows"
                f"  {record['duration_s']:.2f} s{note}",
                markup=False,
                highlight=False,
            )
            status.update(f"running sanitize ({time.perf_counter() - started:.0f} s)…")

        sanitize.set_progress(progress)
        try:
            return sanitize.sanitize_flow(
                str(input_path.resolve()),
                str(policy_file.resolve()),
                str(out.resolve()),
                str(keyring.resolve()),
                overwrite,
                str(audit.resolve()) if audit else None,
            )
        finally:
            sanitize.set_progress(None)


@app.command()
def sanitize(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="CSV, Parquet or JSON Lines.")
    ],
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outputs in a non-empty folder.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End stdout with one JSON summary line.")
    ] = False,
    keyring: Annotated[
        Path | None,
        typer.Option(
            "--keyring",
            "-k",
            envvar="PRIVPIPE_KEYRING",
            help="Keyring that seals the vault, intermediates and output (default: the "
            "policy's keys.keyring). Passphrase from PRIVPIPE_PASSPHRASE or a prompt.",
        ),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Run the sanitize flow: ingest, detect, transform, anonymize, gate, publish.

    INPUT may be sealed (e.g. people.csv.sealed): it is decrypted in memory."""
    _STATE["json"] = as_json
    ring = _check_run_inputs(input_path, policy, out, overwrite, keyring)
    summary = _run_sanitize(input_path, policy, out, ring, overwrite, quiet=as_json, audit=audit)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    typer.echo(
        f"sanitized {summary['rows_in']:,} rows -> {summary['rows_out']:,} rows "
        f"(run {summary['run_id']})"
    )
    for name, path in summary["outputs"].items():
        typer.echo(f"  {name:<9} {path}")
    anonymity = summary["stages"]["anonymize"]["counts"]
    if "k_achieved" in anonymity:
        typer.echo(
            f"  k-anonymity: smallest class {anonymity['k_achieved']} over "
            f"{anonymity['classes']:,} classes, {anonymity['records_below_k']:,} records below "
            f"k={anonymity['k_requested']} (measured, not yet enforced)"
        )
    pending = [s for s, r in summary["stages"].items() if r["status"] != "ok"]
    if pending:
        typer.echo(f"  note: stages not yet enforcing: {', '.join(pending)}")


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything.")] = (
        DEFAULT_DEMO_DIR
    ),
    rows: Annotated[int, typer.Option("--rows", "-n", min=10, help="Synthetic people.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    overwrite: Annotated[
        bool, typer.Option("--overwrite/--no-overwrite", help="Reuse an existing demo folder.")
    ] = True,
) -> None:
    """Make synthetic data and a demo keyring, then run every stage on the demo policy.

    Everything it writes that holds (synthetic) personal data is sealed."""
    from flows import _keys
    from privacy.crypto import Keyring
    from privacy.io import write_frame
    from privacy.synth import synthesize

    policy_file = _demo_policy_path()
    out.mkdir(parents=True, exist_ok=True)
    keyring = out / "keys" / "keyring.json"
    raw_file = out / "raw" / "people.csv.sealed"
    result_dir = out / "sanitized"
    if result_dir.exists() and any(result_dir.iterdir()) and not overwrite:
        from privacy.errors import OutputError

        raise OutputError(f"{result_dir}: output folder exists and is not empty (use --overwrite)")

    passphrase = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    if keyring.exists():
        ring = Keyring.open(keyring, passphrase)
    else:
        keyring.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(keyring.parent, 0o700)
        ring = Keyring.create(keyring, passphrase)
    _DEMO_PASSPHRASES[keyring.resolve()] = passphrase
    _keys.register(ring)
    shown = (
        "from PRIVPIPE_PASSPHRASE"
        if passphrase != DEMO_PASSPHRASE
        else (f"passphrase {DEMO_PASSPHRASE!r}: a demo-only value, never use it for real data")
    )
    typer.echo(f"demo keyring        {keyring}  ({shown})")

    write_frame(
        synthesize(rows, seed), raw_file, keys=ring, associated_data={"artifact": "synthetic"}
    )
    typer.echo(f"synthetic raw data  {raw_file}  ({rows:,} rows, seed {seed}, sealed)")
    ring_path = _check_run_inputs(raw_file, policy_file, result_dir, overwrite, keyring)
    summary = _run_sanitize(raw_file, policy_file, result_dir, ring_path, overwrite, quiet=False)
    _print_summary(summary)
    from privacy.audit import verify_trail

    trail = Path(summary["outputs"]["audit"])
    checked = verify_trail(trail, ring.signing_public_key)
    typer.echo(
        f"audit trail verified: {checked.records} records, {checked.checkpoints} signed "
        f"checkpoints (privpipe audit show {trail})"
    )
    typer.echo(
        f"to read the output: PRIVPIPE_PASSPHRASE=... privpipe decrypt "
        f"{summary['outputs']['data']} data.parquet --keyring {keyring}"
    )


def _demo_policy_path() -> Path:
    """The demo policy: from the source tree, or the copy installed with the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "policies" / "demo.yaml", here / "policies" / "demo.yaml"):
        if candidate.exists():
            return candidate
    from privacy.errors import PolicyError

    raise PolicyError("policies/demo.yaml: not found next to the installed package")


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app and map errors to exit statuses."""
    click_error = _click_exception_class()
    _STATE.update(debug=False, verbose=False, json=False)
    args = sys.argv[1:] if argv is None else argv
    if argv is None and args[:1] in (["scan"], ["detect-text"]) and "torch" not in sys.modules:
        # spaCy's thinc imports torch whenever it is installed (2 s here); the small CPU
        # pipeline never uses it. Only a whole-process command may make this choice.
        sys.modules["torch"] = None  # type: ignore[assignment]
    debug = "--debug" in args
    try:
        app(args=args, standalone_mode=False, prog_name="privpipe")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_error as exc:
        exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        _err("aborted")
        return 130
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:
        return _report_error(exc, debug)
    return 0


def _click_exception_class() -> Any:
    """Click's usage-error base class, as the installed typer uses it (it may vendor click)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer releases that depend on click itself
        from click import ClickException as ClickError

        return ClickError
    return ClickException


def _report_error(exc: Exception, debug: bool) -> int:
    from privacy.errors import PrivpipeError

    if _STATE["json"]:  # machine readers get the outcome on stdout too (no value in it)
        user_error = isinstance(exc, PrivpipeError)
        typer.echo(
            json.dumps(
                {
                    "status": "error",
                    "error": type(exc).__name__ if user_error else "InternalError",
                    "message": str(exc) if user_error else "internal error",
                }
            )
        )
    if isinstance(exc, PrivpipeError):
        if debug:
            import traceback

            traceback.print_exception(exc)
        _err(f"error: {exc}")
        return exc.exit_code
    if debug:
        import traceback

        original = _original_error()
        traceback.print_exception(original or exc)
    name = type(exc).__name__
    if name == "InternalStageError":
        _err(f"error: {exc}; rerun with --debug for details")
    else:
        _err(f"error: internal error ({name}); rerun with --debug for details")
    return 1


def _original_error() -> BaseException | None:
    module = sys.modules.get("flows.sanitize")
    if module is None:
        return None
    error: BaseException | None = module.last_internal_error()
    return error


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

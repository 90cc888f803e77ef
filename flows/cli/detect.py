"""privpipe scan and detect-text: Presidio on columns and on text corpora."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import (
    app,
    echo_err,
    keyring_option,
    open_keyring,
    stderr_console,
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
    keyring: Annotated[Path | None, keyring_option("For a sealed INPUT.")] = None,
) -> None:
    """Classify each column from a sample with Presidio: entity, share, confidence.

    Never prints a value from the data."""
    from privacy.detect import TextScanner, classify_columns, draft_yaml, suggest_policy
    from privacy.io import read_frame, read_input
    from privacy.policy import load_policy

    ring = open_keyring(keyring) if keyring is not None and keyring.exists() else None
    if policy is not None:
        loaded = load_policy(policy)
        frame = read_input(input_path, loaded, ring)
        scanner = TextScanner.for_policy(loaded)
    else:
        frame = read_frame(input_path, keys=ring)
        scanner = TextScanner()
    findings = classify_columns(frame, scanner, sample=sample)
    if suggest is not None:
        from privacy.io import atomic_write_bytes
        from privacy.policy import policy_from_dict

        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", input_path.name.split(".")[0]) or "draft"
        draft = suggest_policy(name, findings, frame=frame)
        policy_from_dict(draft)  # a draft that does not validate is a bug, not a draft
        header = f"# Draft policy from `privpipe scan {input_path.name}`: review every rule.\n"
        atomic_write_bytes(suggest, (header + draft_yaml(draft)).encode())
        echo_err(f"wrote draft policy {suggest}")
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
        float | None,
        typer.Option(
            "--threshold", min=0.0, max=1.0, help="Minimum score (default: the policy's, or 0.5)."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="POLICY.yaml",
            help="Detect as this policy's sanitize runs do (entities, recognizers, allow list).",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Texts per batch.")] = 4096,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes for large corpora (default: the cores this process may use).",
        ),
    ] = None,
) -> None:
    """Find PII spans in a text corpus: {"id", "spans": [{"start", "end", "entity_type",
    "score"}]} per line, Python character offsets, end exclusive."""
    from privacy.detect import TextScanner, default_workers
    from privacy.errors import InputError
    from privacy.io import atomic_path

    ids, texts = _read_corpus(input_path)
    processes = workers or default_workers()
    if policy is not None:
        from privacy.policy import load_policy

        scanner = TextScanner.for_policy(load_policy(policy), workers=processes)
        if threshold is not None:
            scanner.threshold = threshold
    else:
        scanner = TextScanner(threshold=0.5 if threshold is None else threshold, workers=processes)
    from rich.progress import Progress

    with (
        Progress(transient=True, console=stderr_console()) as progress,
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
    echo_err(f"wrote {out}: {len(texts):,} texts")


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

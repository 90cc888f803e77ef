"""The privacy budget ledger: ε spent per data set, signed, witnessed, keyed on the data.

Composition: privpipe charges every differentially private training run on a data set
its (ε, δ) and adds them up (basic sequential composition: k runs at (ε_i, δ_i) are
together (Σε_i, Σδ_i)-DP). That is an upper bound; tighter composition (e.g. of the PRV
accountants' privacy loss distributions across runs) would spend less, and is not
claimed. A run is charged before it trains; a run that would pass the data set's budget
is refused and leaves the ledger as it was. A charged run that then fails keeps its
charge: the noise it drew may already have touched the data, so the spend is counted
(conservatively).

What the ledger is. An audit trail (:class:`privacy.audit.AuditTrail`): hash-chained
JSON lines, every flush closed by an Ed25519-signed checkpoint whose head also goes to
the witness beside the signing keyring. So a ledger that is deleted, emptied, cut or
replaced by an older copy is refused: by the replay here (which verifies every record
and the witness's heads before it trusts a number) and by the trail itself (which never
signs over a tail it cannot verify). State is never stored, only replayed from the
verified records:

* ``dataset``: a data set's first charge fixes its budget (the policy's
  ``training.budget`` then) and its identity;
* ``charge``: ε and δ charged to one or more data sets, the run id and, for a resumed
  copy of a checkpoint, the checkpoint id; ``release`` says what spent it (``model``,
  ``synthetic``, ``statistics``) with its mechanism, accountant and composition rule
  (a record from before has none: a model);
* ``resume``: the first resume of a checkpoint id, covered by its run's charge;
* ``budget-set``: a new budget, the previous one, the reason and (in the record) the
  actor: ``privpipe budget set``, with the custodian's scopes.

Keyed on the people, not a file or a name. A data set is known by the keyed sketches
of its people (the policy's ``privacy.person_key``) and of its records
(:mod:`privacy.dp._identity`: keyed, order-independent, the same for a CSV and a
Parquet of the same rows), by the keyed digest of the raw input it came from
(``input_hmac_sha256`` under ``input_key_id``, which publish binds into a sealed
output's associated data and writes to the manifest) and by the SHA-256 of the
sanitized data's plaintext. Data that shares a person with a known data set, most of
its records, or either digest, is that data set, and is charged to each one it
matches: a run is refused when any of them would pass its budget. Ledgers written
before the sketches hold digests only; those keep matching as they did. A policy's
``training.dataset`` (or its name) is only the label shown beside the id. A policy whose
``training.budget`` differs from the ledger's is refused: changing the budget takes
``privpipe budget set``.

Concurrency: a charge replays, checks and appends under one exclusive lock
(``<ledger>.lock``), so two charges at once cannot together pass the budget.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from privacy._atomic import open_lock, private_dir
from privacy.audit import AuditTrail, AuditVerificationError, read_trail, verify_trail
from privacy.dp._identity import RecordSketch, identity_key, people_sketch, records_sketch
from privacy.errors import (
    BudgetExhausted,
    KeyAccessError,
    LedgerIntegrityError,
    PolicyError,
    ScopeError,
)
from privacy.integrity import Witness, witness_path
from privacy.policy import Policy

__all__ = [
    "BUDGET_SET_SCOPES",
    "BudgetLedger",
    "DataIdentity",
    "LedgerIntegrityError",
    "default_ledger_path",
]

LEDGER_ENV = "PRIVPIPE_LEDGER"
BUDGET_SET_SCOPES = ("vault", "pseudonym")  # the custodian's
_EPS = 1e-9
_STEPS = ("dataset", "charge", "resume", "budget-set")


def _num(value: float) -> str:
    return repr(round(float(value), 9))


def default_ledger_path() -> Path:
    """``$PRIVPIPE_LEDGER``, else ``~/.privpipe/ledger.jsonl``."""
    value = os.environ.get(LEDGER_ENV)
    return Path(value) if value else Path.home() / ".privpipe" / "ledger.jsonl"


@dataclass(frozen=True)
class DataIdentity:
    """What a data set is, for the ledger: the sanitized plaintext's SHA-256 and, where
    known (a sealed output's associated data, else a plain output's manifest), the raw
    input's keyed digest; with :meth:`BudgetLedger.identify`, the keyed sketches of its
    people and records. ``label`` is shown, never matched."""

    sanitized_sha256: str
    input_hmac_sha256: str | None = None
    input_key_id: str | None = None
    label: str = ""
    people: RecordSketch | None = None
    records: RecordSketch | None = None

    @classmethod
    def of_frame(cls, frame: Any, label: str = "") -> DataIdentity:
        """The identity of a frame with no file behind it: SHA-256 of its Arrow IPC
        bytes (uncompressed, so the same frame gives the same digest)."""
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="uncompressed")
        return cls(hashlib.sha256(buffer.getvalue()).hexdigest(), label=label)

    def digests(self) -> list[str]:
        """The strings a data set is matched by, strongest first."""
        out = []
        if self.input_hmac_sha256:
            out.append(f"input:{self.input_key_id or ''}:{self.input_hmac_sha256}")
        out.append(f"sanitized:{self.sanitized_sha256}")
        return out

    @property
    def dataset_id(self) -> str:
        """The id a new data set gets: ``ds-`` and 16 hex digits of its first digest."""
        return "ds-" + hashlib.sha256(self.digests()[0].encode()).hexdigest()[:16]

    def sketches(self) -> list[RecordSketch]:
        return [s for s in (self.people, self.records) if s is not None]

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_hmac_sha256": self.input_hmac_sha256,
            "input_key_id": self.input_key_id,
            "sanitized_sha256": self.sanitized_sha256,
        }
        for sketch in self.sketches():
            out[sketch.kind] = sketch.to_record()
        return out

    @staticmethod
    def sketches_of(record: dict[str, Any]) -> list[RecordSketch]:
        """The sketches a ledger record holds (none in a ledger from before them)."""
        return [RecordSketch.from_record(record[k]) for k in ("people", "records") if k in record]

    @staticmethod
    def digests_of(record: dict[str, Any]) -> list[str]:
        return DataIdentity(
            str(record.get("sanitized_sha256") or ""),
            record.get("input_hmac_sha256"),
            record.get("input_key_id"),
        ).digests()


@dataclass
class _Dataset:
    id: str
    label: str
    budget: float
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    budget_changes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.id,
            "label": self.label,
            "budget": self.budget,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "runs": [dict(r) for r in self.runs],
            "budget_changes": [dict(c) for c in self.budget_changes],
        }


@dataclass
class _State:
    datasets: dict[str, _Dataset] = field(default_factory=dict)
    by_digest: dict[str, str] = field(default_factory=dict)
    sketches: list[tuple[str, RecordSketch]] = field(default_factory=list)  # (dataset, sketch)
    resumed: dict[str, int] = field(default_factory=dict)  # checkpoint id -> resumes
    charged: set[tuple[str, str]] = field(default_factory=set)  # (dataset, run id)
    records: int = 0

    def match(self, data: DataIdentity) -> list[_Dataset]:
        """Every data set ``data`` is (shares a digest with, or a person, or most of
        its records): those a digest names first, strongest first."""
        ids = dict.fromkeys(self.by_digest[d] for d in data.digests() if d in self.by_digest)
        for sketch in data.sketches():
            for name, known in self.sketches:
                if name not in ids and sketch.matches(known):
                    ids[name] = None
        return [self.datasets[i] for i in ids]

    def learn(self, name: str, identity: dict[str, Any]) -> None:
        """Know data set ``name`` by the digests and sketches of ``identity`` too."""
        for digest in DataIdentity.digests_of(identity):
            self.by_digest.setdefault(digest, name)
        for sketch in DataIdentity.sketches_of(identity):
            if (name, sketch) not in self.sketches:
                self.sketches.append((name, sketch))

    def find(self, name: str) -> _Dataset | None:
        """A data set by its id, else by its label when one data set has it."""
        if name in self.datasets:
            return self.datasets[name]
        labelled = [d for d in self.datasets.values() if d.label == name]
        if len(labelled) > 1:
            ids = ", ".join(d.id for d in labelled)
            raise PolicyError(f"data set label {name!r} names {len(labelled)} data sets: {ids}")
        return labelled[0] if labelled else None

    def apply(self, record: dict[str, Any]) -> None:
        step, params = record.get("step"), record.get("params") or {}
        if step not in _STEPS:
            return
        self.records += 1
        if step == "dataset":
            entry = _Dataset(str(params["dataset"]), str(params["label"]), float(params["budget"]))
            self.datasets[entry.id] = entry
            self.learn(entry.id, params["identity"])
        elif step == "charge":
            epsilon, delta = float(params["epsilon"]), float(params["delta"])
            run = {
                "run_id": record.get("run_id"),
                "epsilon": epsilon,
                "delta": delta,
                "charged": record.get("time"),
                "checkpoint_id": params.get("checkpoint_id"),
                "release": params.get("release", "model"),
                "mechanism": (params.get("method") or {}).get("mechanism"),
            }
            for name in params["datasets"]:
                entry = self.datasets[name]
                entry.epsilon_spent = round(entry.epsilon_spent + epsilon, 12)
                entry.delta_spent = entry.delta_spent + delta
                entry.runs.append(dict(run))
                self.charged.add((name, str(record.get("run_id"))))
                self.learn(name, params["identity"])
            if params.get("checkpoint_id"):
                cid = str(params["checkpoint_id"])
                self.resumed[cid] = self.resumed.get(cid, 0) + 1
        elif step == "resume":
            cid = str(params["checkpoint_id"])
            self.resumed[cid] = self.resumed.get(cid, 0) + 1
            for name in params["datasets"]:
                self.datasets[name].runs.append(
                    {
                        "run_id": record.get("run_id"),
                        "epsilon": 0.0,
                        "delta": 0.0,
                        "charged": record.get("time"),
                        "checkpoint_id": cid,
                        "covered_by": record.get("run_id"),
                    }
                )
        elif step == "budget-set":
            entry = self.datasets[str(params["dataset"])]
            entry.budget = float(params["budget"])
            entry.budget_changes.append(
                {
                    "budget": entry.budget,
                    "previous": params.get("previous"),
                    "reason": params.get("reason"),
                    "time": record.get("time"),
                    "actor": record.get("actor"),
                }
            )


class BudgetLedger:
    """The ledger at ``path``, signed by ``signer`` (a keyring) and witnessed beside it.

    Reading needs only the signer's public key (``public_key``, with ``witness`` the
    witness file to check against); charging and setting a budget need the signer."""

    def __init__(
        self,
        path: str | Path,
        signer: Any = None,
        *,
        public_key: bytes | None = None,
        witness: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.signer = signer
        if public_key is None and signer is None:
            raise KeyAccessError(f"{self.path}: the ledger needs a keyring or a public key")
        self.public_key: bytes = public_key if public_key is not None else signer.signing_public_key
        keyring = getattr(signer, "path", None)
        self.witness = (
            Path(witness) if witness else witness_path(keyring) if keyring is not None else None
        )

    # ------------------------------------------------------------------ reading

    def _legacy(self) -> None:
        """Refuse a version-1 JSON ledger here (or beside, at the old default name)."""
        candidates = [self.path]
        if self.path.suffix == ".jsonl":
            candidates.append(self.path.with_suffix(".json"))
        for legacy in candidates:
            try:
                with legacy.open("rb") as handle:
                    head = handle.read(1 << 16)
                document = json.loads(head) if head.lstrip()[:1] == b"{" else None
            except (OSError, ValueError):
                continue
            if isinstance(document, dict) and isinstance(document.get("datasets"), dict):
                raise PolicyError(
                    f"{legacy}: a version-1 budget ledger (keyed on data set names, which a "
                    "policy can change), which the signed ledger does not carry over: keep "
                    f"it as a record under another name (e.g. {legacy.name}.v1), and after "
                    "each data set's first charge lower its budget by what it shows spent "
                    f"(`privpipe budget set DATASET EPS --reason 'carried over from "
                    f"{legacy.name}'`)"
                )

    def _records(self) -> list[dict[str, Any]]:
        """Every ledger record, after verifying the ledger (hashes, chain, signatures
        under the trusted key) and, with a witness, every head it recorded of it."""
        self._legacy()
        witness = Witness(self.witness) if self.witness is not None else None
        if not self.path.exists():
            known = witness.sightings(self.public_key, self.path, None) if witness else []
            recorded = max((s.length for s in known), default=0)
            if recorded:
                raise LedgerIntegrityError(
                    f"{self.path}: the privacy budget ledger is gone, but the witness "
                    f"{self.witness} recorded {recorded} records of it (deleted?): restore "
                    "it from a backup; a new ledger here would give its data sets fresh budget"
                )
            return []
        try:
            verify_trail(self.path, self.public_key, witness=witness)
        except AuditVerificationError as exc:
            raise LedgerIntegrityError(f"privacy budget ledger: {exc}") from None
        return read_trail(self.path)

    def _state(self) -> _State:
        state = _State()
        for record in self._records():
            try:
                state.apply(record)
            except (KeyError, TypeError, ValueError):
                raise LedgerIntegrityError(
                    f"{self.path}: line {record.get('seq')}: not a ledger record"
                ) from None
        return state

    def datasets(self) -> list[dict[str, Any]]:
        """Every data set: id, label, budget, ε and δ spent, runs, budget changes."""
        return [d.to_dict() for d in self._state().datasets.values()]

    def entry(self, dataset: str | DataIdentity) -> dict[str, Any] | None:
        """One data set (by id, label or identity), or None."""
        state = self._state()
        if isinstance(dataset, DataIdentity):
            found = state.match(dataset)
            return found[0].to_dict() if found else None
        entry = state.find(dataset)
        return entry.to_dict() if entry else None

    def spent(self, dataset: str | DataIdentity) -> float:
        entry = self.entry(dataset)
        return float(entry["epsilon_spent"]) if entry else 0.0

    def identify(self, data: DataIdentity, frame: Any, policy: Policy) -> DataIdentity:
        """``data`` with the keyed sketches of ``frame``'s people (the policy's
        ``privacy.person_key``) and records, under this ledger's identity key (its
        signer's: :func:`privacy.dp._identity.identity_key`): what a charge is then
        matched by, whatever file, subset or row order the rows came in."""
        if self.signer is None:
            raise KeyAccessError(f"{self.path}: charging the ledger needs the keyring")
        key = identity_key(self.signer)
        return replace(
            data,
            people=people_sketch(frame, policy, key),
            records=records_sketch(frame, policy, key),
        )

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _locked(self) -> Iterator[_State]:
        if self.signer is None:
            raise KeyAccessError(f"{self.path}: changing the ledger needs the keyring")
        private_dir(self.path.parent)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = open_lock(lock)  # a link in its place is refused, not followed
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._state()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _trail(self) -> Any:
        return AuditTrail(self.path, self.signer, context={"run_id": None, "flow": "ledger"})

    def charge(
        self,
        data: DataIdentity,
        *,
        epsilon: float,
        delta: float,
        budget: float,
        run_id: str,
        checkpoint_id: str | None = None,
        release: str = "model",
        method: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Charge one release (``release``: ``model``, ``synthetic``, ``statistics``;
        ``method``: its mechanism, accountant and composition rule, recorded), or raise
        :class:`BudgetExhausted` (over budget) or :class:`PolicyError` (a budget other
        than the ledger's), changing nothing."""
        with self._locked() as state:
            return self._charge(
                state, data, epsilon, delta, budget, run_id, checkpoint_id, release, method
            )

    def resume(
        self,
        data: DataIdentity,
        *,
        epsilon: float,
        delta: float,
        budget: float,
        run_id: str,
        checkpoint_id: str,
    ) -> dict[str, Any]:
        """A resumed run: the first resume of ``checkpoint_id`` is covered by its run's
        charge (when this ledger holds one for this data); any other (a copy of the
        checkpoint resumed again, or a run this ledger never charged) is charged in
        full, or refused over budget. The entry returned says ``charged``."""
        with self._locked() as state:
            matched = state.match(data)
            covered = state.resumed.get(checkpoint_id, 0) == 0 and any(
                (d.id, run_id) in state.charged for d in matched
            )
            if not covered:
                return self._charge(state, data, epsilon, delta, budget, run_id, checkpoint_id)
            self._check_budget(matched, budget)
            with self._trail() as trail:
                trail.append(
                    "resume",
                    run_id=run_id,
                    params={
                        "datasets": [d.id for d in matched],
                        "checkpoint_id": checkpoint_id,
                        "covered_by": run_id,
                    },
                )
            return {**matched[0].to_dict(), "charged": 0.0}

    def _check_budget(self, matched: list[_Dataset], budget: float) -> None:
        for entry in matched:
            if abs(entry.budget - budget) > _EPS:
                raise PolicyError(
                    f"training.budget: {_num(budget)}, but the ledger {self.path} fixed the "
                    f"budget of data set {entry.id} ({entry.label}) at {_num(entry.budget)} "
                    f"at its first charge; `privpipe budget set {entry.id} {_num(budget)} "
                    "--reason TEXT` changes it"
                )

    def _charge(
        self,
        state: _State,
        data: DataIdentity,
        epsilon: float,
        delta: float,
        budget: float,
        run_id: str,
        checkpoint_id: str | None,
        release: str = "model",
        method: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not (math.isfinite(epsilon) and epsilon > 0 and math.isfinite(budget)):
            raise PolicyError(f"{release} epsilon {epsilon!r} / budget {budget!r}: not positive")
        matched = state.match(data)
        self._check_budget(matched, budget)
        for entry in matched:
            if entry.epsilon_spent + epsilon > entry.budget + _EPS:
                raise BudgetExhausted(
                    f"privacy budget exhausted for data set {entry.id} ({entry.label}): "
                    f"spent {_num(entry.epsilon_spent)} of {_num(entry.budget)}, requested "
                    f"{_num(epsilon)}"
                )
        if epsilon > budget + _EPS and not matched:
            raise BudgetExhausted(
                f"privacy budget exhausted for data set {data.dataset_id} ({data.label}): "
                f"spent 0.0 of {_num(budget)}, requested {_num(epsilon)}"
            )
        with self._trail() as trail:
            if not matched:
                new = _Dataset(data.dataset_id, data.label, float(budget))
                trail.append(
                    "dataset",
                    params={
                        "dataset": new.id,
                        "label": new.label,
                        "budget": new.budget,
                        "identity": data.to_record(),
                    },
                )
                state.datasets[new.id] = new
                matched = [new]
            trail.append(
                "charge",
                run_id=run_id,
                params={
                    "datasets": [d.id for d in matched],
                    "label": data.label,
                    "epsilon": epsilon,
                    "delta": delta,
                    "checkpoint_id": checkpoint_id,
                    "identity": data.to_record(),
                    "release": release,
                    **({"method": dict(method)} if method else {}),
                },
            )
        entry = matched[0]
        return {
            **entry.to_dict(),
            "epsilon_spent": round(entry.epsilon_spent + epsilon, 12),
            "charged": epsilon,
        }

    def set_budget(self, dataset: str, budget: float, *, reason: str) -> dict[str, Any]:
        """Change a data set's budget: the custodian's act (a keyring holding the
        ``vault`` and ``pseudonym`` scopes), recorded with the reason and the actor."""
        scopes = getattr(self.signer, "scopes", None)
        for scope in BUDGET_SET_SCOPES:
            if scopes is None or scope not in scopes:
                raise ScopeError(
                    f"{getattr(self.signer, 'path', 'keyring')}: setting a data set's budget "
                    f"is the custodian's: the keyring must hold the {scope!r} scope",
                    scope=scope,
                    keyring=str(getattr(self.signer, "path", "")),
                )
        if not reason.strip():
            raise PolicyError("--reason: say why the budget changes")
        if not (math.isfinite(budget) and budget > 0):
            raise PolicyError(f"EPS: {budget!r} is not a positive number")
        with self._locked() as state:
            entry = state.find(dataset)
            if entry is None:
                raise PolicyError(
                    f"{self.path}: no data set {dataset!r} in the ledger (a data set enters "
                    "it at its first charge; `privpipe budget show` lists them)"
                )
            previous = entry.budget
            with self._trail() as trail:
                trail.append(
                    "budget-set",
                    params={
                        "dataset": entry.id,
                        "budget": float(budget),
                        "previous": previous,
                        "reason": reason.strip(),
                    },
                )
            entry.budget = float(budget)
            return {**entry.to_dict(), "previous": previous}

"""The verdict: may this data set, this model and these DP releases be released?

One row per guarantee the policy asks for, each with the required and the achieved
figure, pass or fail, and its evidence (the audit record by ``seq``, a manifest field or
a model card field). The run is RELEASABLE only when every row passes, every step
succeeded and every audit trail verified against the trusted key. A failed step's record
names the guarantee it broke (``params.guarantee``, see
:class:`privacy.errors.PrivacyGuaranteeError`): that row fails with the figures it
recorded; guarantees its run never reached say so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from privacy.report._html import num, pct
from privacy.report._run import RELEASES, Run, Trail

__all__ = ["Guarantee", "Verdict", "verdict"]

_EPS = 1e-9


@dataclass
class Guarantee:
    key: str  # the row's id: k, l, t, suppression, residual-pii, ...
    name: str
    required: str
    achieved: str
    passed: bool | None  # None: not asked by the policy, or not reached
    evidence: str


@dataclass
class Verdict:
    releasable: bool
    rows: list[Guarantee]
    reasons: list[str]  # why not, in words; empty when releasable

    @property
    def line(self) -> str:
        return "RELEASABLE" if self.releasable else "NOT RELEASABLE"


def _cite(trail: Trail, record: dict[str, Any], field: str = "") -> str:
    where = f"audit #{record.get('seq')} ({record.get('step')}, {trail.flow} trail)"
    return f"{where}, {field}" if field else where


def _failed_guarantees(run: Run) -> dict[str, tuple[Trail, dict[str, Any]]]:
    out = {}
    for trail, record in run.failures:
        guarantee = (record.get("params") or {}).get("guarantee")
        if guarantee:
            out[str(guarantee)] = (trail, record)
    return out


def _from_failure(key: str, name: str, found: tuple[Trail, dict[str, Any]]) -> Guarantee:
    trail, record = found
    params = record.get("params") or {}
    required, achieved = params.get("required"), params.get("achieved")
    return Guarantee(
        key,
        name,
        num(required) if required is not None else "—",
        num(achieved) if achieved is not None else "—",
        False,
        _cite(trail, record, "params.guarantee"),
    )


def _not_reached(
    key: str, name: str, why: str = "not reached: the run stopped before"
) -> Guarantee:
    return Guarantee(key, name, "—", why, False, "—")


def _kanon_rows(run: Run, failed: dict[str, tuple[Trail, dict[str, Any]]]) -> list[Guarantee]:
    found = run.step("anonymize")
    gate = run.step("gate")
    rows: list[Guarantee] = []
    if found is None or found[1].get("outcome") == "failed":
        if "anonymity" in failed:
            rows.append(
                _from_failure(
                    "k", "k-anonymity (with l, t and the suppression limit)", failed["anonymity"]
                )
            )
        elif "k" in failed:
            rows.append(_from_failure("k", "k-anonymity", failed["k"]))
        else:
            rows.append(_not_reached("k", "k-anonymity"))
        return rows
    trail, record = found
    params, counts = record.get("params") or {}, record.get("counts") or {}
    if "k_achieved" not in counts:
        return [
            Guarantee(
                "k", "k-anonymity", "—", "no quasi-identifiers declared", None, _cite(trail, record)
            )
        ]
    recount = ""
    if gate is not None and gate[1].get("outcome") != "failed":
        recount = f"; recounted by the gate, {_cite(*gate)}"
    k, k_got = params.get("k"), counts.get("k_achieved")
    if "k" in failed:
        rows.append(_from_failure("k", "k-anonymity (gate recount)", failed["k"]))
    else:
        rows.append(
            Guarantee(
                "k",
                "k-anonymity",
                f"every class ≥ {num(k)} records",
                f"smallest class {num(k_got)}",
                isinstance(k, int | float) and isinstance(k_got, int | float) and k_got >= k,
                _cite(trail, record, "counts.k_achieved") + recount,
            )
        )
    for row in (
        _l_row(trail, record, failed),
        _t_row(trail, record),
        _suppression_row(trail, record, failed),
    ):
        if row is not None:
            rows.append(row)
    return rows


Failed = dict[str, tuple[Trail, dict[str, Any]]]


def _l_row(trail: Trail, record: dict[str, Any], failed: Failed) -> Guarantee | None:
    """l-diversity as the signed anonymize record states it (None: not asked)."""
    params, counts = record.get("params") or {}, record.get("counts") or {}
    ld = params.get("l_diversity")
    if not ld:
        return None
    variant, want = ld.get("variant", "distinct"), ld.get("l")
    got = counts.get("entropy_l_achieved") if variant == "entropy" else counts.get("l_achieved")
    if variant == "recursive":
        ok = record.get("outcome") == "ok"
        required = f"recursive (c={num(ld.get('c'))}, l={num(want)})-diversity"
    else:
        ok = isinstance(got, int | float) and isinstance(want, int | float) and got + _EPS >= want
        required = f"{variant} l ≥ {num(want)}"
    if "l" in failed:
        return _from_failure("l", "l-diversity (gate recount)", failed["l"])
    field = "counts.entropy_l_achieved" if variant == "entropy" else "counts.l_achieved"
    return Guarantee(
        "l", "l-diversity", required, f"lowest {num(got)}", ok, _cite(trail, record, field)
    )


def _t_row(trail: Trail, record: dict[str, Any]) -> Guarantee | None:
    """t-closeness as the signed anonymize record states it (None: not asked)."""
    params, counts = record.get("params") or {}, record.get("counts") or {}
    tc = params.get("t_closeness")
    if not tc:
        return None
    want, got = tc.get("t"), counts.get("t_achieved")
    ok = isinstance(got, int | float) and isinstance(want, int | float) and got <= want + _EPS
    return Guarantee(
        "t",
        "t-closeness",
        f"every class within t ≤ {num(want)} ({tc.get('distance', 'auto')} distance)",
        f"largest distance {num(got)}",
        ok,
        _cite(trail, record, "counts.t_achieved"),
    )


def _suppression_row(trail: Trail, record: dict[str, Any], failed: Failed) -> Guarantee:
    """The records suppressed against the policy's limit."""
    params, counts = record.get("params") or {}, record.get("counts") or {}
    if "suppression" in failed:
        return _from_failure("suppression", "suppression", failed["suppression"])
    limit = params.get("max_suppression")
    suppressed, total = counts.get("suppressed", 0), counts.get("records_in") or 0
    share = suppressed / total if total else 0.0
    return Guarantee(
        "suppression",
        "suppression",
        f"≤ {pct(limit)} of records",
        f"{num(suppressed)} of {num(total)} records ({pct(share)}), "
        f"{counts.get('suppressed_records', 'remove')}d",
        isinstance(limit, int | float) and share <= limit + _EPS,
        _cite(trail, record, "counts.suppressed"),
    )


def _gate_rows(run: Run, failed: dict[str, tuple[Trail, dict[str, Any]]]) -> list[Guarantee]:
    rows: list[Guarantee] = []
    found = run.step("detect")
    name = "no undeclared personal data in columns kept as they are (detect)"
    if "undeclared-pii" in failed:
        rows.append(_from_failure("undeclared-pii", name, failed["undeclared-pii"]))
    elif found is not None:
        found_pii = (found[1].get("counts") or {}).get("pii_found") or {}
        rows.append(
            Guarantee(
                "undeclared-pii",
                name,
                "none unless acknowledged in the policy",
                (
                    f"findings in {len(found_pii)} column(s), each acknowledged or below "
                    "the noise floor"
                    if found_pii
                    else "none found"
                ),
                True,
                _cite(*found, "counts.pii_found"),
            )
        )
    else:
        rows.append(_not_reached("undeclared-pii", name))
    gate = run.step("gate")
    specs = (
        ("residual-pii", "no residual personal data in the output (gate)"),
        ("columns", "undeclared and dropped columns absent"),
        ("verbatim-identifiers", "no protected value verbatim in the output"),
    )
    if gate is None or gate[1].get("outcome") == "failed":
        for key, title in specs:
            rows.append(
                _from_failure(key, title, failed[key])
                if key in failed
                else _not_reached(key, title)
            )
        return rows
    trail, record = gate
    counts = record.get("counts") or {}
    residual = counts.get("residual_pii") or {}
    columns = (run.manifest or {}).get("columns") or {}
    acknowledged = unacknowledged = 0
    for column, entities in residual.items():
        allowed = set((columns.get(column) or {}).get("acknowledge_pii") or [])
        for entity, cells in entities.items():
            if entity in allowed:
                acknowledged += int(cells)
            else:
                unacknowledged += int(cells)
    checked = "residual-pii" in ((record.get("params") or {}).get("checks") or [])
    rows.append(
        Guarantee(
            "residual-pii",
            specs[0][1],
            "0 cells, except entity types the policy acknowledges",
            (
                f"{num(unacknowledged)} unacknowledged, {num(acknowledged)} acknowledged cell(s)"
                if checked
                else "not checked (no column holds text)"
            ),
            unacknowledged == 0 if checked else None,
            _cite(trail, record, "counts.residual_pii"),
        )
    )
    rows.append(_columns_row(run, trail, record))
    leaks = counts.get("verbatim_leaks", 0)
    rows.append(
        Guarantee(
            "verbatim-identifiers",
            specs[2][1],
            "0",
            num(leaks),
            leaks == 0,
            _cite(trail, record, "counts.verbatim_leaks"),
        )
    )
    return rows


def _columns_row(run: Run, trail: Trail, gate: dict[str, Any]) -> Guarantee:
    """The published columns from the signed publish record; the rules each was
    declared with from the manifest, which is set only when it matches its signed
    SHA-256 (the policy it copies is the one every record names by hash)."""
    name = "undeclared and dropped columns absent"
    publish = trail.succeeded("publish")
    if run.manifest is None or publish is None:
        return Guarantee(
            "columns",
            name,
            "every published column declared and not dropped",
            "no signed publish record with a manifest that matches it",
            False,
            _cite(trail, gate),
        )
    declared = run.manifest.get("columns") or {}
    published = (publish.get("params") or {}).get("columns")
    cited = _cite(trail, publish, "params.columns")
    if published is None:  # a record made before publish signed its columns
        published = run.manifest.get("output", {}).get("columns") or []
        cited = "manifest output.columns (held to its signed SHA-256)"
    dropped = [c for c in published if (declared.get(c) or {}).get("rule") == "drop"]
    undeclared = [c for c in published if c not in declared]
    n_dropped = sum(1 for c in declared.values() if c.get("rule") == "drop")
    achieved = (
        f"{len(published)} published columns, all declared; none of the {n_dropped} dropped"
        if not dropped and not undeclared
        else f"{len(dropped)} dropped and {len(undeclared)} undeclared column(s) published"
    )
    return Guarantee(
        "columns",
        name,
        "every published column declared and not dropped",
        achieved,
        not dropped and not undeclared,
        f"{cited}; {_cite(trail, gate)}",
    )


def _audit_rows(run: Run) -> list[Guarantee]:
    rows = []
    for trail in run.trails:
        check = trail.check
        rows.append(
            Guarantee(
                f"audit-{trail.flow}",
                f"{trail.flow} audit trail verified",
                "every hash link and signed checkpoint checks out under the trusted key",
                check.text + (f" (signer {check.signer})" if check.signer else ""),
                bool(check.ok),
                f"{trail.path.name} ({trail.flow})",
            )
        )
    if not rows:
        rows.append(
            Guarantee(
                "audit", "audit trail verified", "a verified trail", "no audit trail", False, "—"
            )
        )
    return rows


def _signature_row(run: Run) -> Guarantee:
    policy: dict[str, Any] = {}
    cited = "—"
    for trail in run.trails:
        if trail.records:
            policy = trail.records[0].get("policy") or {}
            cited = _cite(trail, trail.records[0], "policy")
            break
    signers = policy.get("signed_by") or []
    required = bool(policy.get("signature_required"))
    achieved = f"signed by {', '.join(map(str, signers))}" if signers else "unsigned"
    return Guarantee(
        "policy-signature",
        "policy signature",
        "signed by a trusted key (require_signed_policy)"
        if required
        else "not required by the policy",
        achieved + f"; policy {policy.get('id', '?')} sha256 {str(policy.get('sha256', ''))[:16]}…",
        True if signers else (False if required else None),
        cited,
    )


def _dp_rows(run: Run, trail: Trail | None) -> list[Guarantee]:
    """ε and the budget, from the signed train record (the card is a copy: held to its
    hash by the card row)."""
    if trail is None:
        return []
    failed = trail.failed()
    if failed:
        record = failed[-1]
        return [
            Guarantee(
                "epsilon",
                "ε spent against the budget",
                "training within its ε target and the data set's budget",
                f"training failed: {record.get('error')}",
                False,
                _cite(trail, record),
            )
        ]
    train = trail.succeeded("train")
    if train is None:
        return [
            Guarantee(
                "epsilon",
                "differential privacy of the model",
                "a signed train record",
                "no signed successful train record in this run"
                if trail.check.ok
                else "no verified record (the trail did not verify)",
                False,
                f"{trail.path.name} ({trail.flow})",
            )
        ]
    privacy = train.get("params") or {}
    if not privacy.get("private"):
        return [
            Guarantee(
                "epsilon",
                "differential privacy of the model",
                "not asked by the policy (training.dp: false)",
                "the model is NOT differentially private",
                None,
                _cite(trail, train, "params.private"),
            )
        ]
    target, eps = privacy.get("target_epsilon"), privacy.get("epsilon")
    ledger = privacy.get("ledger") or {}
    budget, spent = ledger.get("budget"), ledger.get("spent_after")
    return [
        Guarantee(
            "epsilon",
            "ε of this model",
            f"ε ≤ {num(target)} at δ = {num(privacy.get('delta'))}",
            f"ε = {num(eps)} ({str(privacy.get('accountant', '')).upper()} accountant)",
            isinstance(eps, int | float)
            and isinstance(target, int | float)
            and eps <= target + _EPS,
            _cite(trail, train, "params.epsilon"),
        ),
        Guarantee(
            "budget",
            "ε spent on the data set against its budget",
            f"≤ {num(budget)} in all (ledger {ledger.get('dataset')})",
            f"{num(spent)} spent after this run (this run charged {num(ledger.get('charged'))})"
            if spent is not None
            else "no signed figure of the budget spent (a record made by an older privpipe)",
            isinstance(spent, int | float)
            and isinstance(budget, int | float)
            and spent <= budget + _EPS,
            _cite(trail, train, "params.ledger.spent_after"),
        ),
    ]


_SUCCESS_STEP = {"sanitize": "publish", "train": "train"}  # a release's step is its flow's


def _release_rows(run: Run, trail: Trail) -> list[Guarantee]:
    """A DP release's ε against its target and the data set's budget, and a synthetic
    table's gate (exact matches, the membership attack): from its signed record."""
    what = "synthetic table" if trail.flow == "synthesize" else "statistics release"
    key = "synthetic" if trail.flow == "synthesize" else "statistics"
    failed = trail.failed()
    if failed:
        record = failed[-1]
        params = record.get("params") or {}
        if params.get("guarantee"):
            return [
                _from_failure(
                    str(params["guarantee"]), f"{what}: {params['guarantee']}", (trail, record)
                )
            ]
        return []  # the run row names the failed step
    success = trail.succeeded(trail.flow)
    if success is None:
        return [
            Guarantee(
                f"{key}-epsilon",
                f"differential privacy of the {what}",
                "a signed release record",
                "no signed successful record in this run"
                if trail.check.ok
                else "no verified record (the trail did not verify)",
                False,
                f"{trail.path.name} ({trail.flow})",
            )
        ]
    record = success
    params = record.get("params") or {}
    target, eps = params.get("target_epsilon"), params.get("epsilon")
    ledger = params.get("ledger") or {}
    budget, spent = ledger.get("budget"), ledger.get("spent_after")
    rho = f", ρ = {num(params['rho'])}" if params.get("rho") is not None else ""
    rows = [
        Guarantee(
            f"{key}-epsilon",
            f"ε of the {what}",
            f"ε ≤ {num(target)} at δ = {num(params.get('delta'))}",
            f"ε = {num(eps)} ({params.get('mechanism', '')}{rho}; {params.get('accountant', '')})",
            isinstance(eps, int | float)
            and isinstance(target, int | float)
            and eps <= target + _EPS,
            _cite(trail, record, "params.epsilon"),
        ),
        Guarantee(
            f"{key}-budget",
            f"ε spent on the data set after the {what}",
            f"≤ {num(budget)} in all (ledger {ledger.get('dataset')})",
            f"{num(spent)} spent after it (it charged {num(ledger.get('charged'))})",
            isinstance(spent, int | float)
            and isinstance(budget, int | float)
            and spent <= budget + _EPS,
            _cite(trail, record, "params.ledger.spent_after"),
        ),
    ]
    if trail.flow == "synthesize":
        check = params.get("privacy_check") or {}
        limits = params.get("thresholds") or {}
        share, holdout = check.get("exact_match_share"), check.get("holdout_exact_match_share")
        limit = check.get("exact_match_limit", limits.get("max_exact_match_share"))
        auc, max_auc = check.get("membership_auc"), limits.get("max_membership_auc")
        rows += [
            Guarantee(
                "synthetic-exact-match",
                "synthetic rows equal to a training row",
                f"share ≤ {num(limit)} (the holdout's {num(holdout)})",
                f"share {num(share)}",
                isinstance(share, int | float)
                and isinstance(limit, int | float)
                and share <= limit + 1e-12,
                _cite(trail, record, "params.privacy_check.exact_match_share"),
            ),
            Guarantee(
                "synthetic-membership",
                "membership attack on the synthetic table (DCR)",
                f"AUC ≤ {num(max_auc)}",
                f"AUC {num(auc)}",
                isinstance(auc, int | float)
                and isinstance(max_auc, int | float)
                and auc <= max_auc + 1e-12,
                _cite(trail, record, "params.privacy_check.membership_auc"),
            ),
        ]
    return rows


def _completed_rows(run: Run) -> list[Guarantee]:
    """A run is releasable only on a signed success: the sanitize run's publish, the
    train run's train, a release's own step. Without one, whatever the folder holds was
    not released by it."""
    rows = []
    for trail in run.trails:
        step = _SUCCESS_STEP.get(trail.flow, trail.flow)
        if trail.check.ok is not True or trail.failed():
            continue  # the trail's row, or the failed step's, says why already
        record = trail.succeeded(step)
        rows.append(
            Guarantee(
                f"{trail.flow}-success",
                f"{trail.flow} run completed and signed",
                f"a signed successful {step} record",
                f"run {trail.run_id}: {step} succeeded"
                if record is not None
                else f"run {trail.run_id}: no signed successful {step} (the run never got there)",
                record is not None,
                _cite(trail, record) if record is not None else f"{trail.path.name}",
            )
        )
    return rows


def _problem_rows(run: Run) -> list[Guarantee]:
    rows = [
        Guarantee(p.key, p.name, "the bytes the signed record names", p.what, False, p.evidence)
        for p in run.problems
    ]
    if run.ledger is not None:
        rows.append(
            Guarantee(
                "ledger",
                "budget ledger verified",
                "every hash link and signed checkpoint checks out under the trusted key",
                run.ledger.text,
                run.ledger.ok is True,
                "the ledger (--ledger)",
            )
        )
    return rows


def _binding_row(run: Run) -> list[Guarantee]:
    """A model or a DP release shown beside a sanitize run was made from that run's
    data: its signed record's ``inputs.data`` is the SHA-256 of a file (the published
    data or the training view) the signed publish record says it wrote. A folder copied
    in from another run (another data set, another ε and budget) fails here."""
    sanitize = run.trail("sanitize")
    if sanitize is None:
        return []
    publish = sanitize.succeeded("publish")
    rows = []
    for flow, key, what in (
        ("train", "model-data", "model trained"),
        ("synthesize", "synthetic-data", "synthetic table made"),
        ("statistics", "statistics-data", "statistics measured"),
    ):
        trail = run.trail(flow)
        if trail is None or trail.check.ok is not True:
            continue
        record = trail.succeeded(_SUCCESS_STEP.get(flow, flow))
        if record is None or publish is None:
            continue  # the success rows say what is missing
        data = str((record.get("inputs") or {}).get("data") or "")
        written = {f.sha256: f.name for f in sanitize.files if f.step == "publish"}
        name = written.get(data)
        rows.append(
            Guarantee(
                key,
                f"{what} from this run's data",
                "its record's data is a file this run's publish record wrote",
                f"made from {name} (SHA-256 {data[:16]}…)"
                if name
                else f"made from data with SHA-256 {data[:16]}…, which this run's publish did "
                "not write (a folder from another run?)",
                name is not None,
                f"{_cite(trail, record, 'inputs.data')}; "
                f"{_cite(sanitize, publish, 'outputs.files')}",
            )
        )
    return rows


def verdict(run: Run) -> Verdict:
    """The verdict on ``run`` and its guarantee rows. Only a row that passes counts for
    release: a guarantee no signed record reports fails."""
    failed = _failed_guarantees(run)
    rows: list[Guarantee] = []
    if run.trail("sanitize") is not None:
        rows += _kanon_rows(run, failed)
        rows += _gate_rows(run, failed)
    rows += _dp_rows(run, run.trail("train"))
    for flow in RELEASES:
        trail = run.trail(flow)
        if trail is not None:
            rows += _release_rows(run, trail)
    rows += _binding_row(run)
    rows += _completed_rows(run)
    rows += _problem_rows(run)
    rows += _audit_rows(run)
    rows.append(_signature_row(run))
    reasons = [
        f"{r.name}: required {r.required}, achieved {r.achieved}" for r in rows if r.passed is False
    ]
    for trail, record in run.failures:
        params = record.get("params") or {}
        if params.get("message"):
            reasons.append(f"{record.get('step')} failed: {params['message']}")
        if not params.get("guarantee"):
            reasons.append(
                f"step {record.get('step')} failed ({record.get('error')}), {_cite(trail, record)}"
            )
            rows.append(
                Guarantee(
                    "run",
                    f"{trail.flow} run completed",
                    "every step succeeds",
                    f"step {record.get('step')} failed: {record.get('error')}",
                    False,
                    _cite(trail, record),
                )
            )
    if not any(t.check.ok for t in run.trails):
        reasons.append("no audit trail verified under a trusted key: nothing here is evidence")
    return Verdict(not reasons, rows, reasons)

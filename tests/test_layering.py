"""Dependencies point one way: flows -> privacy. The library never loads Prefect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_privacy_never_imports_prefect() -> None:
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "privacy").rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n    importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'flows')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def _private_imports() -> list[str]:
    """``from M import _name`` across modules of privacy/ and flows/, where ``_name`` is
    not a private module of ``M`` (those are the package's own, for its modules)."""
    import ast

    found = []
    for path in sorted([*(ROOT / "privacy").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module.split(".")[0] not in ("privacy", "flows"):
                continue
            package = ROOT.joinpath(*node.module.split("."))
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or name.startswith("__"):
                    continue
                if (package / f"{name}.py").is_file() or (package / name).is_dir():
                    continue
                found.append(f"{path.relative_to(ROOT)}: from {node.module} import {name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    assert _private_imports() == []


def test_each_sanitize_stage_and_command_group_has_its_own_module() -> None:
    stages = {p.stem for p in (ROOT / "privacy" / "stages").glob("*.py")}
    assert {"ingest", "detect", "transform", "anonymize", "gate", "publish"} <= stages
    commands = {p.stem for p in (ROOT / "flows" / "cli").glob("*.py")}
    assert {"app", "sanitize", "train", "run", "serve", "keys", "audit", "budget"} <= commands
    assert not list((ROOT / "flows").glob("_cli_*.py"))


def _private_module_crossings() -> list[tuple[str, str]]:
    """Imports (module level and inside functions) of a private module ``P._m`` from
    outside the package ``P``: a package's private modules are its own."""
    import ast

    found = []
    for path in sorted([*(ROOT / "privacy").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]):
        rel = path.relative_to(ROOT)
        parts = rel.with_suffix("").parts
        package = ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(
            ".__init__"
        )
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            names = node.module.split(".")
            if names[0] not in ("privacy", "flows"):
                continue
            for i, name in enumerate(names):
                if name.startswith("_") and not name.startswith("__"):
                    owner = ".".join(names[:i])
                    if package != owner and not package.startswith(owner + "."):
                        found.append((str(rel), node.module))
                    break
    return sorted(set(found))


def test_no_module_imports_another_packages_private_module() -> None:
    assert _private_module_crossings() == []


# The layers, lowest first (../shared/DESIGN.md, the README's *Layout*): a module imports
# only from its own layer or below. A new package or top-level module must be placed.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("privacy", "privacy.errors", "privacy._atomic", "privacy._tee", "privacy.actor",
     "privacy.childenv"),
    ("privacy.integrity",),
    ("privacy.crypto", "privacy.audit", "privacy.policy"),
    ("privacy.io", "privacy.hashing", "privacy.sources", "privacy.layout",
     "privacy.policy_signing", "privacy.workspace", "privacy.synth"),
    ("privacy.detect", "privacy.transform", "privacy.kanon", "privacy.dp"),
    ("privacy.stages", "privacy.report", "privacy.schedule"),
    ("flows",),
)  # fmt: skip
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted([*(ROOT / "privacy").rglob("*.py"), *(ROOT / "flows").rglob("*.py")])
    }


def import_graph() -> dict[str, set[str]]:
    """Module -> the privpipe modules it imports, at module level and inside functions
    alike (``from P import name`` is an import of ``P.name`` where that is a module)."""
    import ast

    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return "flows" if parts[0] == "flows" else ".".join(parts[:2])


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = _unit(module), _unit(target)
            if a not in RANK or b not in RANK:
                found.append(f"{a if a not in RANK else b}: not placed in a layer (LAYERS)")
            elif RANK[a] < RANK[b]:
                found.append(f"{module} imports {target}, a layer above it")
    return sorted(set(found))


def test_the_import_graph_has_no_circle_counting_imports_inside_functions() -> None:
    assert import_circles(import_graph()) == []


def test_nothing_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports(import_graph()) == []


def test_the_layering_checks_see_a_circle_and_an_upward_import() -> None:
    graph = import_graph()
    # the witness made to import the keyring again (as it did before issue 31): the
    # keyring imports the witness, so that is a circle, and integrity sits below crypto
    graph["privacy.integrity._witness"].add("privacy.crypto")
    assert any("privacy.integrity._witness" in c for c in import_circles(graph))
    assert "privacy.integrity._witness imports privacy.crypto, a layer above it" in (
        upward_imports(graph)
    )


def test_every_name_the_benchmarks_import_from_privpipe_exists() -> None:
    """Benchmarks are run by hand, not by the suite: a moved name would break one
    unnoticed (issue 31 moved several)."""
    import ast
    import importlib

    missing = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                if node.module.split(".")[0] not in ("privacy", "flows"):
                    continue
                module = importlib.import_module(node.module)
                missing += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if not hasattr(module, a.name)
                    and not (
                        hasattr(module, "__path__")
                        and importlib.util.find_spec(f"{node.module}.{a.name}") is not None
                    )
                ]
    assert missing == []

"""The shape of the package, as rules a change cannot break unnoticed: no import circle (imports
inside functions count: a circle is a circle however late it closes), no module over 400 lines,
no package named as tests are, a docstring atop every module, and the fast start of the CLI
(scapy and pyroute2 are imported only where used)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "wgtrace"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The wgtrace modules ``name`` imports, anywhere in it."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base[:len(base) - node.level + 1] + ([mod] if mod else []))
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def test_no_import_circle_anywhere():
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    # a package's __init__ importing its own submodules is its face, not a circle
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    seen, stack, circles = set(), [], []

    def visit(m):
        if m in stack:
            circles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(graph[m]):
            visit(t)
        stack.pop()
    for m in sorted(graph):
        visit(m)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_modules_are_small_and_say_what_they_hold():
    for name, p in _modules().items():
        lines = p.read_text().count("\n")
        assert lines <= 400, f"{p} has {lines} lines"
        tree = ast.parse(p.read_text())
        if lines > 3:
            assert ast.get_docstring(tree), f"{p} has no docstring saying what it holds"


def test_no_package_is_named_like_tests():
    for d in PKG.rglob("*"):
        if d.is_dir() and (d / "__init__.py").exists():
            assert d.name not in ("spec", "specs", "test", "tests", "testing"), d


def test_the_cli_starts_without_heavy_imports():
    code = ("import sys; from wgtrace.cli import app; "
            "print(' '.join(m for m in ('scapy', 'pyroute2', 'rich.console') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "scapy" not in r.stdout and "pyroute2" not in r.stdout, r.stdout


def test_test_files_have_one_basename_each():
    """pytest imports test modules by basename (tests/ has no packages): two files called alike in
    unit/ and integration/ stop the whole run at collection."""
    names: dict[str, Path] = {}
    for p in (PKG.parent / "tests").rglob("test_*.py"):
        assert p.name not in names, f"{p} and {names[p.name]} share a basename"
        names[p.name] = p

"""Check the project's import structure (scripts/lint.sh runs it in CI).

- Layers, one way: mappings <- adapters <- platforms <- connector. `mappings` imports none of the others;
  `adapters` neither `platforms` nor `connector`; `platforms` never `connector` (the core depends on its
  platforms and adapters, never the other way).
- Inside the connector, the flow is one way too: base <- intake <- orders <- sync <- jobs <- setup <- web
  <- the entry points (demo, cli). A part imports only parts before it (and itself), even inside a function.
- No cycle among the modules' top-level imports.
- An import inside a function is there to break a cycle: one whose module-level import would not close
  a cycle is reported, so it moves to the top of the module.

Usage: python scripts/check_imports.py  (exit 1 with the findings, 0 when clean)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connector", "platforms", "adapters", "mappings")
FORBIDDEN = {
    "mappings": ("adapters", "platforms", "connector"),
    "adapters": ("platforms", "connector"),
    "platforms": ("connector",),
}


# The connector's parts, in the order the flow runs: each may import only those before it.
CONNECTOR_PARTS = ("base", "intake", "orders", "sync", "jobs", "setup", "web", "demo", "cli")


def part(name: str) -> int | None:
    """Where a connector module's part sits in CONNECTOR_PARTS (None: not a connector module in a part)."""
    pieces = name.split(".")
    if pieces[0] != "connector" or len(pieces) < 2:
        return None
    return CONNECTOR_PARTS.index(pieces[1]) if pieces[1] in CONNECTOR_PARTS else None


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's scripts are loaded by Alembic, not imported
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The first-party module an import names (a `from package import module` names the module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int, bool]]:
    """(imported first-party module, line, inside a function) for each import of the module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested |= {id(inner) for inner in ast.walk(node) if inner is not node}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            resolved = _resolve(target, known)
            if resolved and resolved != name and not _type_only(node, tree):
                yield resolved, node.lineno, id(node) in nested


def _type_only(node: ast.AST, tree: ast.Module) -> bool:
    """An import under `if TYPE_CHECKING:` is never executed."""
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
            if any(inner is node for stmt in block.body for inner in ast.walk(stmt)):
                return True
    return False


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        here = todo.pop()
        if here == goal:
            return True
        if here not in seen:
            seen.add(here)
            todo.extend(graph.get(here, ()))
    return False


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def check() -> list[str]:
    known = modules()
    problems: list[str] = []
    top: dict[str, set[str]] = {name: set() for name in known}
    inner: list[tuple[str, str, int]] = []
    for name, path in known.items():
        for target, line, nested in imports(name, path, known):
            where = f"{path.relative_to(ROOT)}:{line}"
            layer, target_layer = name.split(".")[0], target.split(".")[0]
            if target_layer in FORBIDDEN.get(layer, ()):
                problems.append(f"{where}: {layer} must not import {target_layer} ({target})")
            here, there = part(name), part(target)
            if here is not None and there is not None and there > here:
                problems.append(
                    f"{where}: connector.{CONNECTOR_PARTS[here]} must not import connector.{CONNECTOR_PARTS[there]} "
                    f"({target}): the parts import only those before them ({' <- '.join(CONNECTOR_PARTS)})"
                )
            if nested:
                inner.append((name, target, line))
            else:
                top[name].add(target)
    if cycle := _cycle(top):
        problems.append("import cycle at module level: " + " -> ".join(cycle))
    for name, target, line in inner:
        if not _reaches(top, target, name):
            path = known[name].relative_to(ROOT)
            problems.append(
                f"{path}:{line}: imports {target} inside a function, but at the top it would close no "
                "cycle: move it to the module's imports"
            )
    return problems


if __name__ == "__main__":
    found = check()
    for problem in found:
        print(problem)
    print(f"{len(found)} import problem(s)" if found else "imports: layers respected, no cycle")
    sys.exit(1 if found else 0)

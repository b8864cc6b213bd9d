"""Packages form layers and imports point down: a module imports only from its own package
or from packages in a lower layer. Imports inside functions count; hiding one there does
not make it go away. docs/architecture.md draws the same layers."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

FOLD = Path(__file__).resolve().parent.parent / "fold"

# Bottom first. Packages on one line are siblings: neither imports the other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "errors", "outbound", "schemas", "timefmt"),
    ("ids", "jsontext", "paging", "params"),
    ("db",),
    ("buckets", "fields", "migrations"),
    ("auth", "rules"),
    ("api",),
    ("audit", "settings"),
    ("records",),
    ("columns",),
    ("segments",),
    ("exports", "mailchimp", "messages"),
    ("jobs",),
    ("ui",),
    ("web",),
    ("demo",),
    ("bench",),
    ("cli",),
)
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def package_of(module: str) -> str | None:
    """`fold.segments.members` -> `segments`; `fold.ids` -> `ids`; None outside fold."""
    parts = module.split(".")
    if parts[0] != "fold" or len(parts) < 2:
        return None
    return parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(FOLD.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module `path` imports (wherever the import statement is), with its line."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:  # `from fold import segments` names a package
                yield f"{base}.{alias.name}", node.lineno


def edges() -> Iterator[tuple[str, str, str]]:
    """(importing package, imported package, where) for imports across packages."""
    for path in sorted(FOLD.rglob("*.py")):
        source = package_of(module_name(path))
        if source is None:
            continue
        for target_module, line in imports(path):
            target = package_of(target_module)
            if target is None or target == source:
                continue
            if not (FOLD / target).is_dir() and not (FOLD / f"{target}.py").is_file():
                continue  # `from fold import __version__`: a name, not a package
            yield source, target, f"{path.relative_to(FOLD.parent)}:{line}"


def test_every_package_has_a_layer() -> None:
    found = {p.name for p in FOLD.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    found |= {p.stem for p in FOLD.glob("*.py") if p.stem != "__init__"}
    missing = sorted(found - set(LEVEL))
    assert not missing, f"place these packages in LAYERS (tests/test_layers.py): {missing}"


def test_imports_point_down() -> None:
    upward = sorted(
        {
            f"{where}: {source} (layer {LEVEL[source]}) imports {target} (layer {LEVEL[target]})"
            for source, target, where in edges()
            if source in LEVEL and target in LEVEL and LEVEL[target] >= LEVEL[source]
        }
    )
    assert not upward, "imports that do not point down a layer:\n" + "\n".join(upward)

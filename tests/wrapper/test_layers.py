"""The wrapper's layering, checked from its source: no import cycle, no private name of a dependency,
no I/O in the core, and the generated package's operations as openapi.yaml describes them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from comet_replicate import _generated

PACKAGE = Path(__file__).resolve().parents[2] / "wrapper" / "comet_replicate"
ROOT = PACKAGE.parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The comet_replicate modules an import statement loads (relative imports resolved)."""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    names = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    return names or ([target] if target in MODULES else [])


def _runtime_imports(module: str) -> set[str]:
    """Modules imported at module level (not under TYPE_CHECKING, not inside functions)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    found.discard(module)
    return found


def test_the_wrapper_modules_form_no_import_cycle() -> None:
    graph = {module: _runtime_imports(module) for module in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert graph["comet_replicate.core.wait"] >= {"comet_replicate.core.operations"}  # the walk sees imports


def _function_local_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (
                    node.level or (node.module or "").startswith("comet_replicate.")
                ):
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_library_imports_its_own_modules_at_module_level() -> None:
    """Only the package's lazy `__getattr__` and the CLI's per-command loading import inside functions."""
    library = [p for p in PACKAGE.rglob("*.py") if "_cli" not in p.parts and p.name != "__init__.py"]
    local = [hit for path in library for hit in _function_local_imports(path)]
    assert local == [], local


PRIVATE_USES = ("_get_kwargs", "_parse_response", "_uri_reference", "_build_response", "generated_client")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_of_httpx_or_the_generated_package(module: str) -> None:
    source = MODULES[module].read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("comet_replicate_api", "httpx")
        ):
            assert not any(part.startswith("_") for part in (node.module or "").split(".")), ast.unparse(node)
            assert not any(alias.name.startswith("_") for alias in node.names), ast.unparse(node)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("httpx", "comet_replicate_api")
        ):
            assert not node.attr.startswith("_"), ast.unparse(node)
    assert not any(name in source for name in PRIVATE_USES), module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("comet_replicate.core")))
def test_the_core_does_no_io_and_reads_no_clock(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not imported & {"time", "asyncio", "socket", "os", "threading_io", "subprocess"}, imported
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not calls & {"open", "httpx.Client", "httpx.AsyncClient", "print", "input"}, calls


def test_generated_operations_are_those_of_the_spec() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    for operation in _generated.OPERATIONS:
        item = spec["paths"][operation.template][operation.method.lower()]
        assert item["operationId"] == operation.operation_id
        documented = {int(code) for code in item["responses"] if str(code).startswith("2")}
        assert documented == set(operation.success), operation


def test_defaults_and_the_user_agent_live_in_one_module() -> None:
    library = [p for p in PACKAGE.rglob("*.py") if p.name != "_constants.py"]
    assert not [p.name for p in library if "comet-replicate/{" in p.read_text(encoding="utf-8")]

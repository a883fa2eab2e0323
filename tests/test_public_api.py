"""The public names: every public module's ``__all__`` sorted, complete and documented."""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import itertools
import pkgutil
import types

import pytest

import otelkit

# Every module whose dotted path has no part starting with "_".
PUBLIC_MODULES = ["otelkit"] + [
    info.name
    for info in pkgutil.walk_packages(otelkit.__path__, "otelkit.")
    if not any(part.startswith("_") for part in info.name.split("."))
]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest.
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _defined_publicly(module: types.ModuleType) -> set[str]:
    """Names without a leading underscore that the module's own source defines at top level
    (functions, classes, assignments other than type variables) or, for a package, hands on
    from its own submodules."""
    tree = ast.parse(inspect.getsource(module))
    is_package = module.__spec__ is not None and module.__spec__.submodule_search_locations
    found: set[str] = set()

    def own_submodule(node: ast.ImportFrom) -> bool:
        return bool(node.level) or (node.module or "").startswith(module.__name__ + ".")

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "TypeVar":
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.ImportFrom) and is_package and own_submodule(node):
            found |= {alias.asname or alias.name for alias in node.names}
    return {name for name in found if not name.startswith("_")}


def _attribute_docstrings(source: str) -> set[str]:
    """Names assigned in ``source`` (a module or one class) followed by a string literal."""
    body = ast.parse(source).body
    if len(body) == 1 and isinstance(body[0], ast.ClassDef):
        body = body[0].body
    documented: set[str] = set()
    for node, following in itertools.pairwise(body):
        is_doc = isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
        if is_doc and isinstance(node, ast.Assign):
            for target in node.targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                documented |= {n.id for n in names if isinstance(n, ast.Name)}
    return documented


def test_the_public_modules_are_found() -> None:
    assert {"otelkit", "otelkit.coalesce", "otelkit.jobs", "otelkit.testing"} <= set(PUBLIC_MODULES)


def test_top_level_exports_the_documented_entry_points() -> None:
    assert {"configure", "Telemetry", "flush", "current", "__version__"} <= set(otelkit.__all__)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_exports_a_sorted_and_complete_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    assert [name for name in exported if not hasattr(module, name)] == []
    missing = _defined_publicly(module) - set(exported)
    assert missing == set()


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        obj = getattr(module, name)
        if name.startswith("__") or isinstance(obj, str):
            continue
        if isinstance(obj, enum.Enum):
            # A member's __doc__ is its class's: the member's own is the string after it.
            documented = _attribute_docstrings(inspect.getsource(type(obj)))
            assert obj.name in documented, f"{module_name}.{name} has no docstring"
            continue
        assert getattr(obj, "__doc__", None), f"{module_name}.{name} has no docstring"


def test_the_docstring_check_sees_an_undocumented_enum_member() -> None:
    source = "class Color:\n    RED = 1\n    '''Red.'''\n    BLUE = 2\n"
    assert _attribute_docstrings(source) == {"RED"}

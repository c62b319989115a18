"""The packages are layered reference_model < benchmark < harness: a lower layer never imports an
upper one (not even inside a function), so the frozen model and the measurements can be used
without the harness around them."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER = {"reference_model": ("benchmark", "harness"), "benchmark": ("harness",)}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(UPPER))
def test_no_lower_layer_imports_an_upper_one(package):
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for name in sorted(imported_packages(path) & set(UPPER[package]))]
    assert not offenders, "; ".join(offenders)


def test_the_check_sees_a_function_level_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from harness.results import x\n")
    assert "harness" in imported_packages(module)

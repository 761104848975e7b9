"""The package reads like its model codebases: no function longer than 80 lines, and no import
circle between config validation and the methods."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "restorect_jax"
MAX_LINES = 80


def test_no_function_in_the_package_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines})"
                    )
    assert not long, long


def test_config_validation_imports_no_method():
    """`config_lib` and `config_keys` sit below the methods: importing them loads no method (the
    methods import them; `methods.validate` joins the two)."""
    probe = (
        "import sys; import restorect_jax.config_lib, restorect_jax.config_keys; "
        "print(sorted(m for m in sys.modules if m.startswith('restorect_jax.methods')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def _project_imports(module: str) -> list[str]:
    """Every project module `restorect_jax/<module>.py` imports, function bodies included."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name.startswith("restorect_jax")]


def test_config_modules_import_no_method_even_inside_functions():
    assert not _project_imports("config_keys")
    assert not [name for name in _project_imports("config_lib") if ".methods" in name]

"""The house rules (CONTRIBUTING.md), enforced: which layer may import which, one builder per variant, one
error hierarchy, thin CLI modules, defaults written once, and a quiet terminal."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import run_cli_without_tensorflow

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path, package: str | None = None) -> set[str]:
    """Every module a file imports, at the top or inside a function, relative imports resolved."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return found


def layer(directory: str) -> list[Path]:
    return sorted((ROOT / directory).rglob("*.py"))


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for f in files:
        hits = sorted(m for m in imports(f) if m in forbidden or m.startswith(tuple(p + "." for p in forbidden)))
        if hits:
            bad[str(f.relative_to(ROOT))] = hits
    return bad


def test_the_runtime_imports_nothing_of_the_project():
    assert offenders(layer("runtime"), ("fmnist_edge", "exporters")) == {}


def test_exporters_never_import_training_or_the_cli():
    training = ("fmnist_edge.train", "fmnist_edge.augment", "fmnist_edge.distill", "fmnist_edge.cli")
    assert offenders(layer("exporters"), training) == {}


def test_nothing_but_the_cli_imports_exporters():
    library = [f for f in layer("fmnist_edge") + layer("runtime") if "cli" not in f.relative_to(ROOT).parts]
    assert offenders(library, ("exporters",)) == {}


def test_the_import_check_sees_lazy_and_relative_imports(tmp_path):
    # The rule above would pass vacuously if the parser missed imports inside functions or `from ..x`.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from fmnist_edge import cli\n    from ..train import prepare_data\n")
    found = imports(probe, package="fmnist_edge.sub")
    assert "fmnist_edge.cli" in found and "fmnist_edge.train" in found


def module_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Which of the packages' modules each module imports (at the top, inside functions or under TYPE_CHECKING);
    `from pkg import name` counts as importing pkg.name when that is a module, else pkg itself."""
    files = {}
    for pkg in packages:
        for f in (root / pkg).rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, f in files.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                found |= {owner(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else owner(base) for a in node.names}
        graph[name] = found - {None, name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a circle (strongly connected components)."""
    index, low, stack, circles = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(group) > 1:
                circles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_in_the_house():
    assert import_circles(module_graph(ROOT, ("runtime", "exporters", "fmnist_edge"))) == []


def test_the_circle_check_sees_a_lazy_circle(tmp_path):
    # A circle closed only by an import inside a function or under TYPE_CHECKING is still a circle.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from .b import f\n")
    (tmp_path / "pkg" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n")
    (tmp_path / "pkg" / "c.py").write_text("def g():\n    from pkg import a\n")
    assert import_circles(module_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_function_is_longer_than_80_lines():
    # A function that does not fit on a screen does several jobs: split it where one job ends.
    long = {f"{f.relative_to(ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
            for package in ("fmnist_edge", "exporters", "runtime") for f in layer(package)
            for node in ast.walk(ast.parse(f.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80}
    assert long == {}


def test_every_variant_fact_lives_in_the_variant_table():
    """The remedy, web runtime, fine-tuning schedule and flag group of a variant are fields of runtime/variants.py;
    no other module keys a table by variant name."""
    from runtime.variants import GROUPS, VARIANTS, WEB_VARIANTS

    assert {v.group for v in VARIANTS.values()} == set(GROUPS)
    assert set(WEB_VARIANTS) == {v.name for v in VARIANTS.values() if v.web_runtime}
    from exporters.config import ExportConfig

    assert all(hasattr(ExportConfig(), v.fine_tune) for v in VARIANTS.values() if v.fine_tuned)
    names = tuple(VARIANTS)
    keyed = [f"{f.relative_to(ROOT)}:{node.lineno}" for package in ("fmnist_edge", "exporters") for f in layer(package)
             for node in ast.walk(ast.parse(f.read_text()))
             if isinstance(node, ast.Dict) and sum(isinstance(k, ast.Constant) and k.value in names for k in node.keys) > 1]
    assert keyed == []


def test_no_script_edits_sys_path():
    # Scripts import the installed packages (`pip install -e .`), as a user's own script would.
    edits = [f"{f.relative_to(ROOT)}:{n}" for f in sorted((ROOT / "scripts").glob("*.py"))
             for n, line in enumerate(f.read_text().splitlines(), 1) if "sys.path" in line]
    assert edits == []


def test_every_variant_has_exactly_one_builder_and_every_builder_a_variant():
    from exporters.builders import registry
    from runtime.variants import VARIANTS

    builders = registry()
    assert sorted(builders) == sorted(v.builder for v in VARIANTS.values())
    assert len({v.builder for v in VARIANTS.values()}) == len(VARIANTS)
    from exporters.builders import builder

    with pytest.raises(ValueError, match="two builders are registered as 'tflite_int8'"):
        builder("tflite_int8")(lambda exp, tmp: None)


def test_every_error_class_of_the_project_is_one_the_cli_catches():
    from runtime.errors import FmnistEdgeError

    classes = []
    for package in ("runtime", "exporters", "fmnist_edge"):
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if info.name.endswith("__main__"):  # runs the CLI when imported
                continue
            module = importlib.import_module(info.name)
            classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                        if issubclass(c, Exception) and c.__module__ == module.__name__]
    assert len(classes) >= 10
    assert [c.__qualname__ for c in classes if not issubclass(c, FmnistEdgeError)] == []


def test_cli_modules_stay_thin():
    sizes = {f.name: len(f.read_text().splitlines()) for f in (ROOT / "fmnist_edge" / "cli").glob("*.py")}
    assert set(sizes) >= {"train.py", "export.py", "bench.py", "verify.py", "device.py", "info.py"}
    assert max(sizes.values()) <= 200, sizes


def test_export_options_take_their_defaults_and_help_from_the_config_module():
    import typer.main

    from exporters.config import ClusterConfig, ExportConfig, PruneConfig, QATConfig, option_default, option_help
    from fmnist_edge.cli import app

    export = typer.main.get_command(app).commands["export"]
    params = {p.name: p for p in export.params if p.param_type_name == "option"}
    for param, (cls, name) in {"opset": (ExportConfig, "opset"), "onnx_int8_scheme": (ExportConfig, "onnx_int8_scheme"),
                               "calibration_images": (ExportConfig, "calibration_images"),
                               "qat_epochs": (QATConfig, "epochs"), "qat_learning_rate": (QATConfig, "learning_rate"),
                               "prune_sparsity": (PruneConfig, "sparsity"), "clusters": (ClusterConfig, "clusters")}.items():
        assert params[param].default == option_default(cls, name), param
        assert params[param].help == option_help(cls, name), param


def test_version_is_the_packages():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("version")
    proc = run_cli_without_tensorflow("--version")
    import fmnist_edge

    assert proc.returncode == 0 and proc.stdout.strip() == f"fmnist-edge {fmnist_edge.__version__}"
    assert version in (None, fmnist_edge.__version__)  # pyproject reads it from the package (dynamic) or agrees


def test_verify_and_predict_print_no_interpreter_chatter(tmp_path):
    release = ROOT / "tests" / "fixtures" / "micro-release"
    proc = run_cli_without_tensorflow("verify", str(release / "tflite-int8"))
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "INFO: Created TensorFlow Lite" not in proc.stdout + proc.stderr
    # A real message from native code on stderr still gets through the filter.
    code = ("import os, sys; sys.path.insert(0, %r)\nfrom runtime.backends import without_delegate_notice\n"
            "with without_delegate_notice():\n    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n"
            "ERROR: something real\\n')\n" % str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stderr == "ERROR: something real\n"

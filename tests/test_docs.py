"""The documentation: the site builds strictly, its numbers come from artifacts/*.json, the README stays short."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
# What a measured number looks like in a table: a decimal (0.9285, 1.48), a thousands-grouped count (58,492) or a
# percentage; names such as SSE4.2, int8 or cosine-flip-ls0.1 are not numbers.
MEASURED = re.compile(r"(?<![\w.\-])(\d+\.\d+|\d{1,3}(,\d{3})+|\d+%)(?![\w.])")


def docs_macros():
    """docs/macros.py, the module the site renders its tables with."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import macros
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return macros


def test_the_site_builds_with_strict_checks(tmp_path):
    """Broken links, missing pages, a missing JSON or key a page cites: `mkdocs build --strict` fails (as in CI)."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install '.[docs]'")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                     "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "--calibration-images" in cli and "fmnist-edge verify" in cli  # generated from the Typer app
    training = (tmp_path / "site" / "results" / "training" / "index.html").read_text()
    assert "scripts/fidelity.py" in training and training.count("<table") >= 3


def test_no_page_holds_a_hand_copied_number_in_a_table():
    """Every results table is rendered from artifacts/*.json by docs/macros.py, so no table row in a page's source
    may hold a measured number."""
    offenders = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in PAGES for line in p.read_text().splitlines()
                 if line.lstrip().startswith("|") and MEASURED.search(re.sub(r"`[^`]*`|\{\{.*?\}\}", "", line))]
    assert offenders == []


def test_the_macros_refuse_a_missing_file_or_key():
    macros = docs_macros()
    with pytest.raises(FileNotFoundError, match="regenerate it"):
        macros.load("artifacts/no-such-file.json")
    with pytest.raises(KeyError):
        macros.v("artifacts/speed_ratios.json", "host.no_such_key")
    assert macros.v("artifacts/speed_ratios.json", "host.class") == macros.load("artifacts/speed_ratios.json")["host"]["class"]


def test_mean_acc_never_mixes_teachers(monkeypatch):
    """A distilled recipe run from two teachers is two experiments: its mean must name the teacher."""
    macros = docs_macros()
    rows = [{"model": "edge", "recipe_name": "designed", "teacher": t, "accelerator": "CPU", "test_accuracy": a}
            for t, a in [("reference 0.9345", 0.9260), ("reference 0.9345", 0.9270), ("reference 0.9386", 0.9300)]]
    monkeypatch.setattr(macros, "load", lambda file: {"rows": rows})
    with pytest.raises(KeyError, match="name the teacher"):
        macros.mean_acc("edge", "designed")
    assert macros.mean_acc("edge", "designed", "reference 0.9345") == "0.9265"
    assert macros.mean_acc("edge", "designed", "reference 0.9386") == "0.9300"
    with pytest.raises(KeyError, match="no edge run"):
        macros.mean_acc("edge", "designed", "reference 0.9999")


def test_mean_acc_never_mixes_accelerators(monkeypatch):
    """The same recipe trained on a CPU (TensorFlow) and a GPU (JAX) is two sets of seeds: a mean names which."""
    macros = docs_macros()
    rows = [{"run": f"r{i}", "model": "reference", "recipe_name": "tuned", "teacher": None, "seed": s, "accelerator": a,
             "test_accuracy": acc, "fit_seconds": fit, "device": a.lower()}
            for i, (a, s, acc, fit) in enumerate([("CPU", 0, 0.9380, 3600.0), ("CPU", 1, 0.9360, 3000.0),
                                                  ("GPU", 0, 0.9350, 45.0), ("GPU", 2, 0.9370, 44.0)])]
    monkeypatch.setattr(macros, "load", lambda file: {"rows": rows, "command": "python scripts/fidelity.py"})
    with pytest.raises(KeyError, match="name the accelerator"):
        macros.mean_acc("reference", "tuned")
    assert macros.mean_acc("reference", "tuned", accelerator="CPU") == "0.9370"
    assert macros.mean_acc("reference", "tuned", accelerator="GPU") == "0.9360"
    # each GPU run beside the CPU run of its seed: 3600 s against 45 s is 80x; seed 2 has no CPU twin
    table = macros.gpu_runs().splitlines()
    seed0 = next(line for line in table if line.startswith("| reference | tuned | 0 |"))
    seed2 = next(line for line in table if line.startswith("| reference | tuned | 2 |"))
    assert "| 45.0 s |" in seed0 and "| 80x |" in seed0 and "| 0.9350 | 0.9380 |" in seed0
    assert seed2.endswith("| 0.9370 | - |") and "| - |" in seed2


def test_the_readme_is_short_and_points_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for command in ("bash scripts/setup.sh --main && .venv/bin/fmnist-edge train --out artifacts/my-reference && "
                    ".venv/bin/fmnist-edge export artifacts/my-reference && .venv/bin/fmnist-edge bench artifacts/my-reference",
                    "bash scripts/setup.sh && .venv/bin/python -m pytest"):
        assert command in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert "docs/guides/own-model.md" in links  # "export my own model": one click from the README
    assert all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]


def test_code_cites_docs_pages_not_readme_sections():
    """README section titles move; code that explains itself by a measurement names the docs page that holds it."""
    cites = re.compile(r"README ['\"]")
    offenders = [str(p.relative_to(ROOT)) for package in ("runtime", "exporters", "fmnist_edge", "scripts")
                 for p in (ROOT / package).rglob("*.py") if cites.search(p.read_text())]
    assert offenders == []


def test_the_readme_releases_table_is_the_one_the_json_renders():
    macros = docs_macros()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- releases table: docs/macros.py compare_releases() -->\n")
    end = readme.index("<!-- end releases table -->")
    assert readme[start:end].split("\n", 1)[1] == macros.compare_releases()


def test_every_json_the_docs_cite_is_committed_not_ignored():
    """A cited file that .gitignore hides builds here and fails on a fresh clone: each must be trackable."""
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    cited = sorted({m for p in [*PAGES, ROOT / "docs" / "macros.py", ROOT / "README.md"]
                    for m in re.findall(r"artifacts/[\w./-]+?\.json", p.read_text())})
    assert "artifacts/fidelity.json" in cited
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *cited], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == [], f"cited by the docs but ignored by git: {ignored.stdout.split()}"

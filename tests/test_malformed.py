"""Malformed release files, hostile c-source names and everyday friction (hardening round 2, groups 11-12):
every case ends in an `error:` line that names the file, never a traceback. Property-based tests cover
each parser a device runs: golden files, recorded Keras outputs, images (manifests: test_hardening)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import runtime
from fmnist_edge import cli
from runtime.errors import RuntimeArtifactError
from runtime.images import ImageError, load_image
from runtime.verify import verify

RELEASE = Path(__file__).parent / "fixtures" / "micro-release"
runner = CliRunner()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def release(tmp_path):
    shutil.copytree(RELEASE, tmp_path / "release")
    return tmp_path / "release"


def rewrite_json(path: Path, fn):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(fn(data)))


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def set_file(release: Path, rel: str, content: bytes, sha_in: str) -> None:
    """Replace a release file and record its new sha256 where the release does, so only the content is bad."""
    from runtime.manifest import sha256_file

    (release / rel).write_bytes(content)
    digest = sha256_file(release / rel)
    if sha_in == "keras-outputs":
        rewrite_json(release / "keras-outputs" / "manifest.json",
                     lambda m: {**m, "files": {**m["files"], Path(rel).name: {**m["files"][Path(rel).name], "sha256": digest}}})
    else:
        rewrite_json(release / sha_in / "manifest.json",
                     lambda m: {**m, "golden_outputs": {**m["golden_outputs"], "sha256": digest}})


CASES = {
    "deeply nested manifest": lambda r: (r / "tflite-int8" / "manifest.json").write_text("[" * 100_000 + "]" * 100_000),
    "manifest not UTF-8": lambda r: (r / "tflite-int8" / "manifest.json").write_bytes(b'{"variant": "\xff\xfe"}'),
    "keras-outputs manifest invalid": lambda r: (r / "keras-outputs" / "manifest.json").write_text("{not json"),
    "keras-outputs manifest a list": lambda r: (r / "keras-outputs" / "manifest.json").write_text("[1, 2]"),
    "golden npz without keys": lambda r: set_file(r, "keras-outputs/golden.npz", npz_bytes(other=np.zeros(3)), "keras-outputs"),
    "golden images wrong shape": lambda r: set_file(r, "keras-outputs/golden.npz", npz_bytes(
        images=np.zeros((5, 14, 14), np.uint8), labels=np.zeros(5, np.int64), keras_probs=np.zeros((5, 10), np.float32)), "keras-outputs"),
    "golden outputs wrong shape": lambda r: set_file(r, "tflite-int8/golden_outputs.npy", _npy(np.zeros((50, 3), np.float32)),
                                                     "tflite-int8"),
    "golden outputs without sha256": lambda r: rewrite_json(r / "tflite-int8" / "manifest.json", lambda m: {
        **m, "golden_outputs": {k: v for k, v in m["golden_outputs"].items() if k != "sha256"}}),
    "golden outputs random bytes": lambda r: set_file(r, "tflite-int8/golden_outputs.npy", b"\x93NUMPY garbage" * 20, "tflite-int8"),
}


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_release_files_give_an_error_naming_the_file(release, case):
    CASES[case](release)
    result = runner.invoke(cli.app, ["verify", str(release)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert str(release) in result.output  # the message names the file
    if "tflite-int8" not in case and "golden outputs" not in case and "nested" not in case and "UTF-8" not in case:
        return
    assert "PASS" in result.output  # verdicts on the other artifacts are still shown


def test_run_manifest_problems_are_errors_not_tracebacks(release, tmp_path):
    rewrite_json(release / "manifest.json", lambda m: {k: v for k, v in m.items() if k != "data"})
    result = runner.invoke(cli.app, ["bench", str(release), "--keras", "recorded", "--runs", "10"])
    assert result.exit_code == 1 and "not a run manifest" in result.output and "Traceback" not in result.output


def test_seed_out_of_range_is_refused():
    pytest.importorskip("tensorflow")
    for seed in ("-1", str(2**32)):
        result = runner.invoke(cli.app, ["train", "--model", "mlp", "--limit", "100", "--seed", seed, "--out", "/tmp/x"])
        assert result.exit_code == 1 and "--seed must be an integer from 0" in result.output


# --- property tests of the device-side parsers ---------------------------------------------------

@given(images=st.binary(max_size=2000), probs=st.binary(max_size=2000))
@FUZZ
def test_any_golden_and_recorded_file_bytes_verify_or_fail_cleanly(release, images, probs):
    set_file(release, "tflite-int8/golden_outputs.npy", probs, "tflite-int8")
    set_file(release, "keras-outputs/golden.npz", images, "keras-outputs")
    try:
        r = verify(release / "tflite-int8")
    except RuntimeArtifactError as exc:
        assert str(release) in str(exc)
    else:
        assert not r.passed


@given(arrays=st.dictionaries(st.sampled_from(["images", "labels", "keras_probs", "x"]),
                              st.sampled_from([np.zeros((3, 28, 28), np.uint8), np.full(3, 12, np.int64),
                                               np.full((3, 10), np.nan, np.float32), np.zeros((3, 10), np.float32),
                                               np.zeros((0, 28, 28), np.uint8), np.zeros((3,), np.float64)])))
@FUZZ
def test_any_golden_npz_content_verifies_or_fails_cleanly(release, arrays):
    set_file(release, "keras-outputs/golden.npz", npz_bytes(**arrays), "keras-outputs")
    try:
        verify(release / "tflite-int8")
    except RuntimeArtifactError as exc:
        assert "golden.npz" in str(exc)
    else:  # no drawn content holds valid labels (uint8 images, labels 0..9 for each): it can never verify
        raise AssertionError(f"verify accepted a golden.npz holding {sorted(arrays)}")


@given(data=st.binary(max_size=3000))
@FUZZ
def test_recorded_keras_outputs_of_any_bytes_are_refused_cleanly(release, tmp_path, data):
    from fmnist_edge.bench import recorded_keras_probs
    from fmnist_edge.errors import FmnistEdgeError

    set_file(release, "keras-outputs/test_probs.npy", data, "keras-outputs")
    with pytest.raises(FmnistEdgeError, match="test_probs.npy"):
        recorded_keras_probs(release, 10)


@given(data=st.binary(max_size=4000), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bin"]))
@FUZZ
def test_any_image_bytes_load_or_raise_image_error(tmp_path, data, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        out = load_image(path)
    except ImageError:
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


# --- c-source ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("../../x", "use a C identifier"), ("a/b", "use a C identifier"), ("int", "C/C++ keyword"),
    ("1model", "use a C identifier"), ("", "use a C identifier"), ("x" * 64, "use a C identifier"),
])
def test_c_source_names_are_identifiers(tmp_path, name, message):
    result = runner.invoke(cli.app, ["c-source", str(RELEASE / "tflite-int8"), "--out", str(tmp_path / "c"), "--name", name])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists() and not list(tmp_path.parent.glob("x.*"))


def test_c_source_escapes_manifest_strings_and_compiles(release, tmp_path):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    names = ['quote " here', "back\\", "new\nline", "tri??=graph", "é", "*/ end", "// slash", "t\tab", "ok", "x\x00y"]
    rewrite_json(release / "tflite-int8" / "manifest.json",
                 lambda m: {**m, "class_names": names, "variant": "tflite-int8\nint injected = 1;"})
    result = runner.invoke(cli.app, ["c-source", str(release / "tflite-int8"), "--out", str(tmp_path), "--name", "m"])
    assert result.exit_code == 0, result.output
    main = tmp_path / "main.cc"
    main.write_text('#include <cstdio>\n#include "m.h"\nint main() { for (int i = 0; i < 10; ++i) '
                    'std::printf("%s|", m_class_names[i]); return m_len > 0 ? 0 : 1; }\n')
    subprocess.run([cxx, "-std=c++17", "-Werror", "-o", str(tmp_path / "a.out"), str(main), str(tmp_path / "m.cc")],
                   check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "a.out")], capture_output=True, check=True).stdout
    assert out.decode("utf-8").split("|")[:9] == names[:9]  # byte-exact round trip (the NUL one ends at \0)
    assert "injected" not in (tmp_path / "m.h").read_text().split("\n", 1)[1].split("//")[0]


# --- friction ------------------------------------------------------------------------------------

def test_runtime_api_friction_is_gone():
    clf = runtime.load(RELEASE / "tflite-float32")
    one = np.zeros((28, 28), np.uint8)
    assert clf.predict_proba(one, batch_size=4).shape == (1, 10)  # one image, not 28 rows of one
    assert clf.predict_proba(one[..., None]).shape == (1, 10)  # (28, 28, 1) is one image too
    for k in (0, -1, 11):
        with pytest.raises(ValueError, match="k must be an integer from 1 to 10"):
            clf.top_k(one, k)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        clf.predict_proba(one, batch_size=0)


@pytest.mark.parametrize("variant", ["tflite-int4", "../tflite-int8", "keras-outputs"])
def test_bench_variant_names_are_checked(variant):
    result = runner.invoke(cli.app, ["bench", str(RELEASE), "--variant", variant])
    assert result.exit_code == 1 and "--variant: unknown" in result.output

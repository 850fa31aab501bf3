"""Results tables for the documentation site, rendered from the JSON files in artifacts/ at build time.

mkdocs-macros loads this module (mkdocs.yml: `macros.module_name`). Pages call the macros below instead of
holding numbers: `{{ rows_table(...) }}` for a table, `{{ v(...) }}` for a number in a sentence. Every table is
printed with the command that produced its JSON, so a reader can regenerate it. A missing file or key fails the
build (`mkdocs build --strict` runs in CI), so a page cannot cite a number no JSON holds.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the renderers the CLI already uses, from this checkout even when not installed


@lru_cache(maxsize=None)
def load(file: str):
    path = ROOT / file
    if not path.is_file():
        raise FileNotFoundError(f"docs cite {file}, which does not exist: regenerate it or fix the page")
    return json.loads(path.read_text())


def pick(data, dotted: str):
    """`data` at a dotted path ("host.class", "rows.0.accuracy"); a missing key is an error, never a blank."""
    for part in dotted.split(".") if dotted else ():
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def fmt(value, spec: str = "") -> str:
    """A cell: format spec, or pct (share as %), kib (bytes as KiB), yesno, us (µs, no decimals)."""
    if value is None:
        return "-"
    if spec == "pct":
        return f"{100 * value:.2f}%"
    if spec == "kib":
        return f"{value / 1024:,.1f} KiB"
    if spec == "yesno":
        return "yes" if value else "**no**"
    if spec == "us":
        return f"{value:,.0f} µs" if value >= 10 else f"{value:.1f} µs"
    return format(value, spec) if spec else str(value)


def v(file: str, dotted: str, spec: str = "") -> str:
    """One number from a JSON file, for a sentence."""
    return fmt(pick(load(file), dotted), spec)


def command_line(file: str, command: str | None) -> str:
    data = load(file)
    command = command or (data.get("command") if isinstance(data, dict) else None)
    if not command:
        raise ValueError(f"{file} records no command: pass command= to the macro")
    host = data.get("host") if isinstance(data, dict) else None
    where = f" Measured on {host.get('model', '?')}, **{host['class']}**." if host and host.get("class") else ""
    return f"From `{file}`, written by `{command}`.{where}\n\n"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rows_table(file: str, path: str, columns: list, command: str | None = None, where: dict | None = None) -> str:
    """A table of the records at `path` (a list, or a dict whose keys become the `_key` column).
    columns: [header, key] or [header, key, spec]; `where` keeps records whose fields equal its values."""
    records = pick(load(file), path)
    if isinstance(records, dict):
        records = [{"_key": k, **v} if isinstance(v, dict) else {"_key": k, "value": v} for k, v in records.items()]
    records = [r for r in records if all(r.get(k) == want for k, want in (where or {}).items())]
    rows = [[fmt(pick(r, c[1]), c[2] if len(c) > 2 else "") for c in columns] for r in records]
    return command_line(file, command) + table([c[0] for c in columns], rows)


def fidelity() -> str:
    """Training fidelity: every run, then each model and recipe's mean over its seeds."""
    from fmnist_edge import fidelity as script

    rows = load("artifacts/fidelity.json")["rows"]
    return command_line("artifacts/fidelity.json", None) + script.markdown(rows) + "\n" + script.summary(rows)


def run_acc(run: str) -> str:
    """A trained run's test accuracy, as fidelity.json records it (the run named by its directory)."""
    return f"{next(r for r in load('artifacts/fidelity.json')['rows'] if r['run'] == run)['test_accuracy']:.4f}"


def run_fit(run: str) -> str:
    """A trained run's fit time in seconds, as fidelity.json records it."""
    return f"{next(r for r in load('artifacts/fidelity.json')['rows'] if r['run'] == run)['fit_seconds']:.1f}"


def mean_acc(model: str, recipe: str, teacher: str | None = None, accelerator: str | None = None) -> str:
    """The mean test accuracy of a model and recipe over every seed in fidelity.json. So that no mean mixes two
    experiments, a recipe run with more than one teacher needs `teacher` ("reference 0.9386"), and one trained on
    both a CPU and a GPU needs `accelerator` ("CPU" or "GPU")."""
    rows = [r for r in load("artifacts/fidelity.json")["rows"] if (r["model"], r["recipe_name"]) == (model, recipe)]
    if teacher is not None:
        rows = [r for r in rows if r["teacher"] == teacher]
    if accelerator is not None:
        rows = [r for r in rows if r["accelerator"] == accelerator]
    if not rows:
        raise KeyError(f"fidelity.json has no {model} run with recipe {recipe!r}" + (f" and teacher {teacher!r}" if teacher else "")
                       + (f" on {accelerator}" if accelerator else ""))
    teachers = {r["teacher"] for r in rows}
    if len(teachers) > 1:  # str(): a labels-only run's teacher is None
        raise KeyError(f"{model} {recipe!r} was distilled from {sorted(map(str, teachers))}: name the teacher")
    accelerators = {r["accelerator"] for r in rows}
    if len(accelerators) > 1:
        raise KeyError(f"{model} {recipe!r} was trained on {sorted(accelerators)}: name the accelerator")
    accs = [r["test_accuracy"] for r in rows]
    return f"{sum(accs) / len(accs):.4f}"


def gpu_runs() -> str:
    """Each GPU run of fidelity.json beside the CPU run of the same model, recipe, teacher and seed: fit time and
    test accuracy (a GPU run with no CPU twin shows '-' there)."""
    from fmnist_edge import fidelity as script

    rows = load("artifacts/fidelity.json")["rows"]
    key = lambda r: (r["model"], r["recipe_name"], r["teacher"], r["seed"])  # noqa: E731
    cpu = {key(r): r for r in rows if r["accelerator"] == "CPU"}
    out = []
    for g in (r for r in rows if r["accelerator"] == "GPU"):
        c = cpu.get(key(g))
        out.append([g["model"], g["recipe_name"], str(g["seed"]), g["device"], f"{g['fit_seconds']:.1f} s",
                    script.fmt_time(c["fit_seconds"]) + f" ({c['device']})" if c else "-",
                    f"{c['fit_seconds'] / g['fit_seconds']:.0f}x" if c else "-",
                    f"{g['test_accuracy']:.4f}", f"{c['test_accuracy']:.4f}" if c else "-"])
    return command_line("artifacts/fidelity.json", None) + table(
        ["model", "recipe", "seed", "GPU run", "GPU fit", "CPU fit (same seed)", "CPU/GPU time", "GPU test acc",
         "CPU test acc"], out)


def bench(release: str, command: str) -> str:
    """A release's bench.json as `fmnist-edge bench` renders it."""
    from fmnist_edge import report

    return command_line(f"{release}/bench.json", command) + report.markdown(load(f"{release}/bench.json"))


def photos(release: str) -> str:
    """A release's photo benchmark (`bench --photos`): per artifact beside raw, and per condition."""
    from fmnist_edge import report

    file = f"{release}/photo-bench.json"
    data = load(file)
    command = f"fmnist-edge bench {release} --photos photo-bench --keras recorded --json {file}"
    made = f"The photos: `python scripts/make_photo_benchmark.py photo-bench --n {data['photos']['photos']} --seed 0`.\n\n"
    return command_line(file, command) + made + "\n".join(report.photo_markdown(data)).strip() + "\n"


def photo_study(file: str = "artifacts/photo_study.json") -> str:
    data = load(file)
    rows = [[r["conversion"], f"{r['accuracy']:.4f}", f"{100 * (r['accuracy'] - data['raw_accuracy']):+.2f}"] for r in data["rows"]]
    rows.append(["raw 28x28 test images of the same garments", f"{data['raw_accuracy']:.4f}", ""])
    return command_line(file, None) + f"{data['photos']:,} photos, `{data['artifact']}`.\n\n" + table(
        ["conversion", "photo accuracy", "vs raw, points"], rows)


def photo_confidence(file: str = "artifacts/photo_study.json") -> str:
    c = load(file)["confidence"]
    rows = [[f"{b['from']:.1f}-{b['to']:.1f}", f"{b['photos']:,}", fmt(b["accuracy"], ".3f")] for b in c["bins"] if b["photos"]]
    return (table(["top-1 probability", "photos", "accuracy"], rows)
            + f"\nBelow {c['not_sure_below']} ({c['photos_below']:,} photos) the answers are right less than two times in "
              "three: the web app says \"not sure\" there (`runtime/photo.json`'s `not_sure_below`).\n")


def photo_round2(file: str = "artifacts/photo_round2.json") -> str:
    """The hard photo sets: per condition, each release's tflite-int8 on the photos beside the same garments' raw
    28x28, the tuning set (where photo.json was chosen) beside the held-out set (where it is reported)."""
    data = load(file)
    sets = data["sets"]
    shipped = {w: b["conversions"]["shipped (photo.json)"] for w, b in sets.items()}

    def cell(t, c, release):
        r = t[release]["conditions"].get(c)
        return "" if r is None else f"{r['accuracy']:.3f} ({100 * (r['accuracy'] - r['raw_accuracy']):+.1f})"

    names = list(shipped["held-out"]["reference"]["conditions"])
    rows = [[c] + [cell(shipped[w], c, r) for r in ("reference", "edge") for w in ("tuning", "held-out")] for c in names]
    mean = {(w, r): shipped[w][r] for w in shipped for r in ("reference", "edge")}
    rows.append(["**mean**"] + [f"**{t['accuracy']:.3f} ({100 * (t['accuracy'] - t['raw_accuracy']):+.1f})**"
                                for t in (mean[w, r] for r in ("reference", "edge") for w in ("tuning", "held-out"))])
    head = (command_line(file, None) + f"{sets['tuning']['photos']:,} tuning and {sets['held-out']['photos']:,} held-out "
            "photos, `tflite-int8`; each cell: photo accuracy (points against the same garments' raw 28x28).\n\n")
    return head + table(["condition", "reference, tuning", "reference, held-out", "edge, tuning", "edge, held-out"], rows)


def photo_round2_steps(file: str = "artifacts/photo_round2.json") -> str:
    """Each newer step of the conversion turned off in turn, on both sets: mean and worst condition against raw."""
    sets = load(file)["sets"]
    rows = []
    for ablation in sets["held-out"]["conversions"]:
        row = [ablation]
        for release in ("reference", "edge"):
            for which in ("tuning", "held-out"):
                t = sets[which]["conversions"][ablation][release]
                gap = 100 * (t["accuracy"] - t["raw_accuracy"])
                row.append(f"{t['accuracy']:.3f} ({gap:+.1f}; worst {100 * t['worst_gap']:+.1f})")
        rows.append(row)
    return table(["conversion", "reference, tuning", "reference, held-out", "edge, tuning", "edge, held-out"], rows)


def export_fidelity(release: str) -> str:
    """Each variant's manifest: size, accuracy on the test set, agreement with Keras, what it was checked against."""
    keras = load(f"{release}/manifest.json")["test_accuracy"]
    float32 = load(f"{release}/tflite-float32/manifest.json")["file"]["bytes"]
    rows = [["Keras (original)", "", "", f"{keras:.4f}", "", "", ""]]
    for d in sorted((ROOT / release).glob("*/manifest.json")):
        m = load(str(d.relative_to(ROOT)))
        if m.get("kind") != "artifact":
            continue
        f, check = m["fidelity"], m["check"]
        rows.append([m["variant"], fmt(m["file"]["bytes"], "kib"), f"{m['file']['bytes'] / float32:.1%}",
                     f"{f['accuracy']:.4f}", f"{-f['accuracy_drop_points']:+.2f}", fmt(f["agreement_with_keras"], "pct"),
                     f"{fmt(check['agreement'], 'pct')} (gate {fmt(check['tolerance']['min_agreement'], 'pct')})"])
    return (f"From each `{release}/VARIANT/manifest.json`, written by `fmnist-edge export {release}`.\n\n"
            + table(["variant", "size", "size / float32", "test accuracy", "vs Keras (points)", "agreement with Keras",
                     "agreement with the model it was converted from (gate)"], rows))


def micro(release: str) -> str:
    rows = []
    for path in sorted((ROOT / release).glob("micro-*.json")):
        m = load(str(path.relative_to(ROOT)))
        rows.append([m["artifact"].rsplit("/", 1)[-1], fmt(m["runs_on_tflite_micro"], "yesno"), f"{m['accuracy']:.3f}",
                     f"{m['litert_accuracy']:.3f}", fmt(m["agreement_with_litert"], "pct"),
                     f"{m['tensor_arena_bytes']:,} B", f"{m['flash_bytes']:,} B"])
    return (f"From `{release}/micro-*.json`, written by `fmnist-edge micro {release}/VARIANT --test-images 1000 --json "
            f"{release}/micro-VARIANT.json`.\n\n"
            + table(["artifact", "runs on TFLM", "accuracy on TFLM", "LiteRT accuracy", "agreement with LiteRT",
                     "tensor arena", "flash"], rows))


def cpu_matrix(file: str, command: str) -> str:
    data = load(file)
    cpus = list(data["cpus"])
    artifacts = list(data["results"][cpus[0]])

    def cell(c):
        if c is None or not c.get("applies", True):  # a column that cannot run the artifact (the browser, ONNX...)
            return "–"
        return ("" if c["passed"] else "**FAIL** ") + f"{c['agreement']:.0%}, {c['max_abs_diff']:.2g}"

    rows = [[a, *(cell(data["results"][cpu].get(a)) for cpu in cpus)] for a in artifacts]
    return command_line(file, command) + table(["artifact", *(data["cpus"][c] for c in cpus)], rows)


def profile(file: str, command: str) -> str:
    out = [command_line(file, command)]
    for a in load(file)["artifacts"]:
        rows = [[o["op"], "x".join(map(str, o.get("shape") or [])), ("~" if o.get("below_noise") else "") + f"{o['us']:.1f}",
                 f"{o['share']:.1%}", fmt(o.get("mflop"), ".3f"), fmt(o.get("mflop_per_s"), ",.0f"), o.get("note", "")]
                for o in a["ops"]]
        noise = a.get("noise_floor_us")
        floor = f", noise floor {noise:.2f} µs: ~ marks an op below it" if noise is not None else ""
        out.append(f"**{a['variant']}** ({a['format']}, whole file p50 {a['whole_us']:.1f} µs{floor}; {a['method']}):\n\n"
                   + table(["op", "output shape", "µs", "share", "MFLOP", "MFLOP/s", "note"], rows) + "\n")
    return "\n".join(out)


def explain(file: str, command: str) -> str:
    """An `fmnist-edge explain --json` report as the command prints it: the layers, worst first."""
    r = load(file)
    rows = []
    for rank, layer in enumerate(r["layers"], 1):
        alone, rng = layer.get("float_only"), layer.get("ranges", {})
        rows.append([str(rank), layer["layer"], layer["op"], f"{layer['channel_rel_rmse']:.2%}", f"{layer['rel_rmse']:.2%}",
                     fmt(layer.get("snr_db"), ".1f"),
                     f"{alone['agreement']:.2%} ({alone['agreement_gain_points']:+.2f})" if alone else "-",
                     f"{rng['output_outlier_ratio']:.1f}" if "output_outlier_ratio" in rng else "-",
                     f"{rng['weight_outlier_ratio']:.1f}" if "weight_outlier_ratio" in rng else "-"])
    scheme = f" ({r['scheme']})" if r.get("scheme") else ""
    head = (f"{command_line(file, command)}{r['variant']}{scheme}: int8 accuracy {r['int8']['accuracy']:.4f} (Keras "
            f"{r['keras_accuracy']:.4f}), agreement with Keras {r['int8']['agreement']:.2%} on {r['test_images']:,} test "
            f"images ({'passes' if r['passes_gate'] else 'misses'} its gate, >= {r['gate']['min_agreement']:.1%}).\n\n")
    return head + table(["#", "layer", "op", "error / channel", "error", "SNR dB", "agreement, only it in float",
                         "outlier ratio, output", "outlier ratio, weights"], rows)


def onnx_verdict(file: str) -> str:
    """The reduce-range study's conclusion, from its JSON: which files met all three criteria, if any."""
    won = {release.rsplit("/", 1)[-1]: files for release, files in load(file)["meets_all_three"].items()}
    if not any(won.values()):
        return ("No file meets all three on this CPU: keeping layers in float wins agreement back but costs the speed "
                "that made reduce-range attractive, so `u8u8` stays the default.")
    both = set.intersection(*(set(f) for f in won.values()))
    return ("Meeting all three: " + "; ".join(f"{r}: {', '.join(f) or 'none'}" for r, f in won.items()) + ". "
            + ("The same file kind meets them on both releases." if both else
               "No one scheme meets them on both releases, so `u8u8` stays the default."))


def shipped_ratio(release: str, variant: str) -> str:
    """A shipped file's zlib-9 size over its release's float32 file's, both as shipped (metadata embedded)."""
    size = load(f"{release}/{variant}/manifest.json")["file"]["zlib9_bytes"]
    return f"{size / load(f'{release}/tflite-float32/manifest.json')['file']['zlib9_bytes']:.1%}"


def search_seconds(file: str, method: str) -> str:
    """The fit seconds of every rung a pruning or clustering search tried, summed (exporters.search)."""
    return f"{sum(t['fit_seconds'] for t in pick(load(file), f'{method}.search.tried')):,.0f}"


def compare_releases(releases=("artifacts/reference", "artifacts/edge")) -> str:
    """The shipped releases side by side, from their manifests, bench.json and micro-tflite-int8.json."""
    def row(release, name):
        return next(r for r in load(f"{release}/bench.json")["rows"] if r["name"] == name)

    def cells(release):
        m, b, name = load(f"{release}/manifest.json"), load(f"{release}/bench.json"), release.rsplit("/", 1)[-1]
        int8, tfm = row(release, "tflite-int8"), load(f"{release}/micro-tflite-int8.json")
        return [f"{m['params']:,}", f"{b['method']['flops_per_image'] / 1e6:.2f}",
                f"{fmt(int8['file_bytes'], 'kib')} / {fmt(int8['compressed_bytes'], 'kib')}",
                f"{tfm['tensor_arena_bytes']:,} B", f"{m['test_accuracy']:.4f}",
                f"{int8['metrics']['accuracy']:.4f} / {fmt(int8['metrics']['agreement'], 'pct')}",
                # latency side by side: both releases' files timed in one interleaved run on one CPU
                *(f"{speed['p50_us'][f'{name}/{n}']:,.0f} µs" for n in ("tflite-float32", "tflite-int8", "onnx-int8"))]

    speed = load("artifacts/speed_ratios.json")
    where = f"1 thread, {speed['host']['class']}"
    labels = ["parameters", "MFLOP per image", "TFLite int8 file, raw / zlib-9", "TFLite Micro tensor arena (int8)",
              "float test accuracy (shipped seed)", "TFLite int8 accuracy / agreement with Keras",
              f"batch-1 p50, TFLite float32 ({where})", f"batch-1 p50, TFLite int8 ({where})",
              f"batch-1 p50, ONNX int8 ({where})"]
    columns = [cells(r) for r in releases]
    return (f"From {', '.join(f'`{r}/`' for r in releases)} (manifest.json, bench.json, micro-tflite-int8.json) and "
            f"`artifacts/speed_ratios.json` (`{speed['command']}`).\n\n"
            + table(["", *(f"`{r.rsplit('/', 1)[-1]}`" for r in releases)],
                    [[label, *(c[i] for c in columns)] for i, label in enumerate(labels)]))


def presets() -> str:
    """The presets and their named recipes, from fmnist_edge.models (what `fmnist-edge models` prints)."""
    from fmnist_edge.models import PRESETS

    rows = [[f"`{p.name}`", f"`{r.name}`", p.seed_docs, f"{p.params:,}", f"{p.mflop:.2f}", str(r.epochs), str(r.batch_size),
             f"{r.optimizer} {r.learning_rate:g}", str(r.validation), r.extras() or "-",
             f"{p.reported_accuracy:.4f}" if p.reported_accuracy else "- (designed here)"]
            for p in PRESETS.values() for r in (p.recipe, *p.recipes)]
    return ("From `fmnist_edge/models.py` (`fmnist-edge models` prints the same).\n\n"
            + table(["preset", "recipe", "seed article", "params", "MFLOP", "epochs", "batch", "optimizer", "validation",
                     "extras", "seed's test acc"], rows))


def cli_reference() -> str:
    """Every command's usage, arguments and options with defaults, from the Typer app (Typer's own docs generator)."""
    import typer.cli
    import typer.main

    from fmnist_edge.cli import app

    command = typer.main.get_command(app)
    ctx = type(command).context_class(command)
    text = typer.cli.get_docs_for_click(obj=command, ctx=ctx, name="fmnist-edge", call_prefix="", title=None)
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())  # under the page's h1


def define_env(env) -> None:
    for macro in (cli_reference, run_acc, run_fit, mean_acc, presets, v, rows_table, fidelity, gpu_runs, bench, export_fidelity, micro, cpu_matrix,
                  profile, compare_releases, photos, photo_study, photo_confidence, photo_round2, photo_round2_steps,
                  explain, search_seconds, onnx_verdict, shipped_ratio):
        env.macro(macro)

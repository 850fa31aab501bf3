"""Render a bench result (the dict from `bench.run_bench`): terminal table, Markdown, plot, and gating."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .errors import FmnistEdgeError


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _cells(row: dict, best=()) -> list[str]:
    m, lat, thr, ex = row["metrics"], row["latency"], row["throughput"], row["extra"]
    if row["status"] != "ok":
        return [row["name"], "ERROR: " + row["reason"]] + [""] * (len(HEADERS) - 2)
    size, packed = row.get("file_bytes"), row.get("compressed_bytes")
    agreement = m.get("agreement")
    return [
        row["name"] + (" ★" if row["name"] in best else "") + (" (repaired)" if ex.get("repair") else "")
        + (" (over budget)" if ex.get("search") and not ex["search"]["within_budget"] else ""),
        _fmt(None if size is None else size / 1024, ",.1f"),
        _fmt(None if packed is None else packed / 1024, ",.1f"),
        _fmt(m.get("accuracy"), ".4f"),
        _fmt(m.get("accuracy_delta_points"), "+.2f"),
        _fmt(None if agreement is None else 100 * agreement, ".2f"),
        _fmt(m.get("max_abs_diff"), ".2g"),
        _fmt(lat.get("p50_us"), ",.0f"),
        _fmt(lat.get("p99_us"), ",.0f"),
        _fmt(lat.get("runtime_overhead_p50"), ".2f"),
        _fmt(max(thr.values()) if thr else None, ",.0f"),
        _fmt(ex.get("p50_over_floor"), ".1f"),
    ]


HEADERS = ["model", "size KiB", "zlib-9 KiB", "accuracy", "Δacc pts", "agree %", "max |Δp|", "p50 µs", "p99 µs",
           "overhead", "img/s", "× floor"]


def rich_table(result: dict) -> Table:
    m = result["method"]
    t = Table(title=f"{result['model']} on {result['test_images']:,} test images; {result['host']['cpu']} ({cpu_line(result['host'])}); batch-1 latency, {m['threads']} thread(s), "
                    f"{m['runs']} runs after {m['warmup']} warm-up; Keras: {m['keras']}")
    for h in HEADERS:
        t.add_column(h, justify="left" if h == "model" else "right")
    for row in result["rows"]:
        t.add_row(*_cells(row, frontier(result)), style="red" if row["status"] != "ok" else None)
    t.caption = FRONTIER_NOTE
    return t


FRONTIER_NOTE = ("★ Pareto-optimal: no other artifact is at least as accurate, as small (zlib-9) and as fast (p50). "
                 "zlib-9: what a download or an over-the-air update carries.")


def frontier(result: dict) -> list[str]:
    """The Pareto-optimal artifacts (recorded by bench; computed for an older bench.json)."""
    from .tradeoff import pareto

    return result["pareto"] if "pareto" in result else pareto(result)


def cpu_line(host: dict) -> str:
    """The CPU class and ISA features a latency or int8 number depends on (older bench.json lacks them)."""
    if "class" not in host:
        return "instruction-set features not recorded"
    return f"{host['class']}: {' '.join(host['features']) or 'no SIMD features reported'}"


BROWSER_HEADERS = ("model", "runtime", "browser p50 µs", "native p50 µs", "browser / native")


def browser_rows(result: dict) -> list[tuple[str, ...]]:
    """Browser latency next to native, for the rows `bench --browser` timed in Chromium."""
    out = []
    for r in result["rows"]:
        b, native = r.get("extra", {}).get("browser"), r.get("latency", {}).get("p50_us")
        if b:
            out.append((r["name"], b["runtime"], f"{b['p50_us']:,.0f}", _fmt(native, ",.0f"),
                        _fmt(b["p50_us"] / native if native else None, ".1f")))
    return out


def browser_table(result: dict) -> Table:
    table = Table(title="In the browser (headless Chromium, WebAssembly, 1 thread; the web app's own code), batch 1")
    for h in BROWSER_HEADERS:
        table.add_column(h, justify="left" if h in ("model", "runtime") else "right")
    for row in browser_rows(result):
        table.add_row(*row)
    return table


def gap_points(block: dict) -> float | None:
    """Photo accuracy minus the same garments' raw accuracy, in points (None: no raw twin, the user's own photos)."""
    return None if block["raw_accuracy"] is None else 100 * (block["accuracy"] - block["raw_accuracy"])


PHOTO_HEADERS = ("model", "test accuracy", "same garments raw", "photos", "photos − raw pts", "worst condition")


def photo_rows(result: dict) -> list[tuple[str, ...]]:
    """Per artifact: accuracy on the photos of `bench --photos` beside the raw 28x28 accuracy of the same garments."""
    out = []
    for r in result["rows"]:
        p = r.get("extra", {}).get("photos")
        if not p:
            continue
        worst = min(p["conditions"].items(), key=lambda kv: kv[1]["accuracy"] - (kv[1]["raw_accuracy"] or 0))
        wgap = _fmt(gap_points(worst[1]), "+.1f", missing="")
        out.append((r["name"], _fmt(r["metrics"].get("accuracy"), ".4f"), _fmt(p["raw_accuracy"], ".4f"),
                    f"{p['accuracy']:.4f}", _fmt(gap_points(p), "+.2f"),
                    f"{worst[0]}: {worst[1]['accuracy']:.3f}" + (f" ({wgap})" if wgap else "")))
    return out


def condition_rows(result: dict, variant: str) -> list[tuple[str, ...]]:
    """Per photo condition, for one artifact: photos, accuracy, raw accuracy of the same garments, the gap."""
    row = next(r for r in result["rows"] if r["name"] == variant)
    described = (result.get("photos") or {}).get("conditions", {})
    return [(c, described.get(c, ""), str(v["photos"]), f"{v['accuracy']:.3f}", _fmt(v["raw_accuracy"], ".3f"),
             _fmt(gap_points(v), "+.1f"),
             str(v["no_garment"]))
            for c, v in row["extra"]["photos"]["conditions"].items()]


CONDITION_HEADERS = ("condition", "what it shows", "photos", "accuracy", "raw", "Δ pts", "no garment found")


def photo_title(result: dict) -> str:
    p = result["photos"]
    return (f"On {p['photos']:,} photos from {p['dir']} (runtime.load_image, {p['preprocess_ms_per_photo']} ms a photo; "
            f"no garment found in {p['no_garment']}), beside the raw 28x28 test images of the same garments")


def photo_tables(result: dict) -> list[Table]:
    """The photo summary per artifact, and the per-condition table of the first int8 artifact (or the first)."""
    rows = photo_rows(result)
    if not rows:
        return []
    summary = Table(title=photo_title(result))
    for h in PHOTO_HEADERS:
        summary.add_column(h, justify="left" if h in ("model", "worst condition") else "right")
    for row in rows:
        summary.add_row(*row)
    names = [r[0] for r in rows]  # the per-condition table: the shipped int8 file if benchmarked
    variant = "tflite-int8" if "tflite-int8" in names else next((n for n in names if "int8" in n), names[0])
    per = Table(title=f"{variant} per photo condition")
    for h in CONDITION_HEADERS:
        per.add_column(h, justify="left" if h in ("condition", "what it shows") else "right")
    for row in condition_rows(result, variant):
        per.add_row(*row)
    return [summary, per]


def photo_markdown(result: dict) -> list[str]:
    rows = photo_rows(result)
    if not rows:
        return []
    lines = ["", photo_title(result) + ":", "", "| " + " | ".join(PHOTO_HEADERS) + " |", "|---|---:|---:|---:|---:|---|",
             *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)]
    for variant in (r[0] for r in rows):
        lines += ["", f"{variant} per photo condition:", "", "| " + " | ".join(CONDITION_HEADERS) + " |",
                  "|---|---|---:|---:|---:|---:|---:|", *("| " + " | ".join(row) + " |" for row in condition_rows(result, variant))]
    return lines


def markdown(result: dict) -> str:
    m, h = result["method"], result["host"]
    lines = [
        f"Model `{result['model']}`, {result['test_images']:,} test images. Host: {h['cpu']} ({h['cpu_count']} cores, "
        f"{h['machine']}; {cpu_line(h)}), Python {h['python']}. Batch-1 latency with {m['threads']} thread(s), {m['runs']} timed runs "
        f"after {m['warmup']} warm-up; throughput is the best of batches {m['throughput_batches']}. Keras row: {m['keras']}.",
        "",
        "| " + " | ".join(h.replace("|", "\\|") for h in HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r, frontier(result))) + " |" for r in result["rows"]]
    lines += ["", FRONTIER_NOTE]
    keras = next((r for r in result["rows"] if r["kind"] == "keras-live"), None)
    if keras:
        lat = keras["latency"]
        lines += ["", f"Keras latency paths (batch 1, p50): compiled XLA tf.function {lat['p50_us']:,.0f} µs, "
                      f"eager `model(x)` {lat['eager_p50_us']:,.0f} µs, `model.predict(x)` {lat['predict_p50_us']:,.0f} µs."]
    if browser_rows(result):
        lines += ["", "In the browser (headless Chromium, WebAssembly, 1 thread; the web app's own code), batch 1:", "",
                  "| " + " | ".join(BROWSER_HEADERS) + " |", "|---|---|---:|---:|---:|",
                  *("| " + " | ".join(row) + " |" for row in browser_rows(result))]
    lines += photo_markdown(result)
    if m.get("flops_per_image") and m.get("peak_gflops_float32_matmul"):
        lines += ["", f"Compute floor: {m['flops_per_image'] / 1e6:.1f} MFLOP/image over a measured float32 matmul peak "
                      f"of {m['peak_gflops_float32_matmul']:.1f} GFLOP/s ({m['threads']} thread(s)); '× floor' = p50 / floor, shown for "
                      "float rows only (a float32 matmul peak is no floor for int8 kernels)."]
    return "\n".join(lines) + "\n"


def can_plot() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def plot(result: dict, path: Path) -> bool:
    """Accuracy against latency (marker area ~ file size). Returns False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    plotted = [r for r in result["rows"]
               if r["status"] == "ok" and r["latency"].get("p50_us") and r["metrics"].get("accuracy") is not None]
    best = frontier(result)
    labels = []
    for r in plotted:
        x, y = r["latency"]["p50_us"], 100 * r["metrics"]["accuracy"]
        packed = r.get("compressed_bytes")
        size = (packed or r.get("file_bytes") or 1e5) / 1024
        on = r["name"] in best
        ax.scatter(x, y, s=max(20, size / 5), alpha=0.7 if on else 0.3, edgecolors="black" if on else "none",
                   linewidths=1.5)
        labels.append((x, y, f"{'★ ' if on else ''}{r['name']} ({size:,.0f} KiB{' zlib' if packed else ' file'})", on))
    ax.set_xscale("log")
    ax.autoscale_view()
    # Variants often share an accuracy and nearly a latency: stack labels in screen space so none overlap.
    taken = []
    for x, y, text, on in sorted(labels, key=lambda lab: lab[1]):
        px, py = ax.transData.transform((x, y))
        ty = py + 4
        while any(abs(ty - oy) < 12 and abs(px - ox) < 190 for ox, oy in taken):
            ty += 12
        taken.append((px, ty))
        ax.annotate(text, (x, y), fontsize=8, xytext=(6, ty - py), textcoords="offset pixels",
                    fontweight="bold" if on else "normal")
    ax.set_xlabel("batch-1 latency p50 (µs, log scale)")
    ax.set_ylabel("test accuracy (%)")
    # The frontier is three-dimensional (size is the marker area), so its members are outlined, not joined.
    ax.set_title(f"{result['model']}: accuracy vs latency, marker area ~ compressed size\n"
                 "★ outlined: Pareto-optimal in accuracy, compressed size and latency", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return True


def gate(result: dict, max_drop: float | None, min_agreement: float | None) -> list[str]:
    """Rows that break the thresholds (accuracy drop in points, agreement as a fraction), or failed."""
    bad = []
    for r in result["rows"]:
        if r["kind"] != "artifact":
            continue
        if r["status"] != "ok":
            bad.append(f"{r['name']}: failed to run ({r['reason']})")
            continue
        m = r["metrics"]
        # Written as "not within" so that a NaN metric fails the gate instead of slipping through it.
        if max_drop is not None and not -m["accuracy_delta_points"] <= max_drop:
            bad.append(f"{r['name']}: accuracy drop {-m['accuracy_delta_points']:.2f} points > --max-drop {max_drop}")
        if min_agreement is not None and not m["agreement"] >= min_agreement:
            bad.append(f"{r['name']}: agreement {m['agreement']:.4f} < --min-agreement {min_agreement}")
    return bad


def load_result(path: Path) -> dict:
    """A bench.json written by `fmnist-edge bench`, checked enough to be queried."""
    from runtime.manifest import ManifestError, read_json

    try:
        result = read_json(path)
    except ManifestError as exc:
        raise FmnistEdgeError(str(exc)) from None
    if not (isinstance(result, dict) and isinstance(result.get("rows"), list) and isinstance(result.get("method"), dict)
            and all(isinstance(r, dict) and {"name", "kind", "status", "metrics", "latency"} <= set(r) for r in result["rows"])):
        raise FmnistEdgeError(f"{path}: not a bench result (expected the bench.json written by `fmnist-edge bench`).")
    return result


def artifact_metrics(path: Path) -> dict[str, dict]:
    """Each artifact's metrics in a bench.json, checked to be one by the loader `bench --results` uses."""
    return {r["name"]: r["metrics"] or {} for r in load_result(Path(path))["rows"] if r["kind"] == "artifact"}


def accuracy_differences(host: dict[str, dict], other: dict[str, dict]) -> list[str]:
    """Where two benches of the same release and test images (two CPUs) differ in any variant's accuracy,
    agreement or flipped images, or in which variants they hold; empty when they agree."""
    bad = [f"{name}: missing on one side" for name in sorted(set(host) ^ set(other))]
    for name in sorted(set(host) & set(other)):
        for key in ("accuracy", "agreement", "flipped_indices"):
            if host[name].get(key) != other[name].get(key):
                bad.append(f"{name}: {key} {other[name].get(key)} here, {host[name].get(key)} on the host")
    return bad

"""The training-fidelity table: each trained run against its seed's reported test accuracy, and each model, recipe,
teacher and accelerator's mean over its seeds. Reads only run directories written by `fmnist-edge train` (their
manifest.json); `scripts/fidelity.py` writes artifacts/fidelity.json with it and the docs render its rows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path


def recipe_name(m: dict) -> str:
    """The recipe's name: a named recipe of the preset whose fields the run's recipe has (runs trained with
    overrides that equal a named recipe are that recipe), else "custom: " and what differs from the seed's."""
    from fmnist_edge.models import PRESETS, Recipe

    fields = {k: v for k, v in m["recipe"].items() if k != "name"}
    preset = PRESETS.get(model_name(m))
    if preset is None:
        return m["recipe"].get("name", "custom")
    recipe = Recipe(**fields)
    for named in (preset.recipe, *preset.recipes):
        if recipe == replace(named, name="seed"):
            return named.name
    seed = replace(preset.recipe, name="seed").to_dict()
    changed = [f"{k} {v}" for k, v in replace(recipe, name="seed").to_dict().items() if seed.get(k) != v]
    return "custom: " + ", ".join(changed)


def model_name(m: dict) -> str:
    """The run's preset by today's name (a run trained before a rename keeps the old one in its manifest)."""
    from fmnist_edge.models import preset_name_of_run

    return preset_name_of_run(m["model"], m.get("params"))


def row(run: Path) -> dict:
    m = json.loads((run / "manifest.json").read_text())
    t = m["training"]
    return {
        "run": str(run),
        "model": model_name(m),
        "recipe_name": recipe_name(m),
        "seed_reported_accuracy": m["seed_reported_accuracy"],
        "test_accuracy": round(m["test_accuracy"], 4),
        "test_images": m["data"]["test_images"],
        "params": m["params"],
        "epochs": m["recipe"]["epochs"],
        "batch_size": m["recipe"]["batch_size"],
        "seed": m["seed"],
        "fit_seconds": t["fit_seconds"],
        # what trained it, "CPU" or "GPU": a mean over seeds never mixes the two (different kernels, other numerics)
        "accelerator": "CPU" if t["device"] == "CPU" else "GPU",
        # a distilled run's teacher: the same recipe distilled from a better teacher is a different experiment
        "teacher": teacher(m),
        # a CPU is named with its class (its instruction sets): speed and int8 numerics depend on it
        "device": f"{t['backend']} on {t['device']} ({t['device_name']}"
                  f"{', ' + m['host']['class'] if m.get('host', {}).get('class') else ''}, {t['cpu_count']} cores)"
        if t["device"] == "CPU" else f"{t['backend']} on {t['device_name']}",
    }


def teacher(m: dict) -> str | None:
    """The teacher a distilled run learned from, as "model accuracy" (None for a run trained on labels only)."""
    t = m.get("teacher")
    return f"{t['model']} {t['test_accuracy']:.4f}" if t else None


def seed_acc(r: dict) -> str:
    """The seed's reported accuracy, or "-" for a model designed here (no seed to compare with)."""
    return f"{r['seed_reported_accuracy']:.4f}" if r["seed_reported_accuracy"] else "- (designed here)"


def fmt_time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def markdown(rows: list[dict]) -> str:
    """The training-fidelity table, from fidelity.json's rows (the docs render it at build time)."""
    lines = ["| model | recipe | teacher | seed's test acc | our test acc (10k) | params | epochs | batch | seed | fit time | device |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['recipe_name']} | {r['teacher'] or '-'} | {seed_acc(r)} | {r['test_accuracy']:.4f}"
                     f"{'' if r['test_images'] == 10_000 else ' (' + str(r['test_images']) + ' imgs)'} | {r['params']:,} | "
                     f"{r['epochs']} | {r['batch_size']} | {r['seed']} | {fmt_time(r['fit_seconds'])} | {r['device']} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    """Mean test accuracy of each model, recipe, teacher and accelerator over its seeds (every seed counted, none
    picked)."""
    groups: dict[tuple[str, str, str | None, str], list[dict]] = {}
    for r in rows:
        if r["test_images"] == 10_000:
            groups.setdefault((r["model"], r["recipe_name"], r["teacher"], r["accelerator"]), []).append(r)
    lines = ["| model | recipe | teacher | trained on | seeds | test acc per seed | mean | seed's test acc |",
             "|---|---|---|---|---|---|---|---|"]
    for (model, recipe, teacher_, accelerator), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs]
        lines.append(f"| {model} | {recipe} | {teacher_ or '-'} | {accelerator} | {len(rs)} | "
                     f"{', '.join(f'{a:.4f}' for a in accs)} | {sum(accs) / len(accs):.4f} | {seed_acc(rs[0])} |")
    return "\n".join(lines) + "\n"

"""MkDocs hook: the plots the toolkit writes (bench's accuracy-vs-latency plot, training curves) become pages' images.

They live beside their JSON in artifacts/, not in docs/, so the site shows the files the commands wrote, never a
copy that could go stale.
"""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
PLOTS = {  # site path -> file written by a command
    "img/reference-bench.png": "artifacts/reference/bench.png",
    "img/edge-bench.png": "artifacts/edge/bench.png",
    "img/reference-curves.png": "artifacts/runs/reference/curves.png",
    "img/tuned-curves.png": "artifacts/runs/tuned-ablation/cosine-flip-ls0.1-e60-s0/curves.png",
}


def on_files(files, config):
    for uri, source in PLOTS.items():
        files.append(File.generated(config, uri, abs_src_path=str(ROOT / source)))
    return files

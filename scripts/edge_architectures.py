"""The architectures tried for the `edge` preset, measured against its budget: forward MFLOP (<= 5), int8
TFLite file (<= 64 KiB of flash), TensorFlow Lite Micro tensor arena (<= 32 KiB of RAM) and, with
--epochs, test accuracy after a short training (Adam 2e-3 with cosine decay, batch 128, flip augmentation);
with --latency, the batch-1 p50 of the float32 and int8 TFLite files on this CPU (interleaved rounds, one
thread), which is what issue 26 asks of the edge model: int8 faster than float32. Prints a table and writes JSON.

    python scripts/edge_architectures.py --json artifacts/edge_architectures.json            # budget only, ~2 min
    python scripts/edge_architectures.py --epochs 8 --json artifacts/edge_architectures.json  # + ~5 min a model
    python scripts/edge_architectures.py --latency --json artifacts/edge_int8_latency.json    # + int8 vs float32

`edge` is the preset as shipped (built by fmnist_edge.models); the others are the candidates it was chosen
from. Sizes and arena come from a full-integer conversion calibrated on 100 training images, the same
converter settings as `fmnist-edge export`, and TFLite Micro's own allocation report.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fmnist_edge import data, models  # noqa: E402
from fmnist_edge.augment import fit_augmented  # noqa: E402
from fmnist_edge.atomic import write_json  # noqa: E402
from fmnist_edge.host import host_cpu  # noqa: E402

FLASH, ARENA, MFLOP = 64 * 1024, 32 * 1024, 5.0


def candidates(keras) -> dict:
    """name -> (description, layer list builder); BatchNorm + ReLU after every conv, softmax last."""
    L = keras.layers

    def blk(layer):
        return [layer, L.BatchNormalization(momentum=0.9), L.ReLU()]

    def conv(f, k=3):
        return blk(L.Conv2D(f, k, padding="same", use_bias=False))

    def sep(f):
        return blk(L.SeparableConv2D(f, 3, padding="same", use_bias=False))

    def gap():
        return [L.GlobalAveragePooling2D(), L.Dropout(0.2), L.Dense(10)]

    def flat(c):
        return [*conv(c, 1), L.Flatten(), L.Dropout(0.3), L.Dense(10)]

    pool = L.MaxPooling2D
    return {
        "gap": ("first design: Conv24-Pool-Sep48-Sep64-Pool-Sep128-Sep128-GAP",
                lambda: [*conv(24), pool(2), *sep(48), *sep(64), pool(2), *sep(128), *sep(128), *gap()]),
        "wide14-flat": ("Conv32-Pool-Sep64-Sep64-Pool-Sep128-1x1(16)-Flatten",
                        lambda: [*conv(32), pool(2), *sep(64), *sep(64), pool(2), *sep(128), *flat(16)]),
        "conv14-flat": ("Conv16-Pool-Conv32-Sep64-Pool-Sep128-1x1(16)-Flatten",
                        lambda: [*conv(16), pool(2), *conv(32), *sep(64), pool(2), *sep(128), *flat(16)]),
        "conv14-flat24": ("Conv16-Pool-Conv32-Sep64-Pool-Sep128-1x1(24)-Flatten",
                          lambda: [*conv(16), pool(2), *conv(32), *sep(64), pool(2), *sep(128), *flat(24)]),
        "wide14-deep": ("Conv24-Pool-Sep64-Sep64-Pool-Sep128-Sep64-1x1(16)-Flatten",
                        lambda: [*conv(24), pool(2), *sep(64), *sep(64), pool(2), *sep(128), *sep(64), *flat(16)]),
        # For int8 speed (issue 26): the first conv on 28x28x1 and the depthwise convs are what int8 kernels run
        # slower than float (bench --profile); these shrink the one and replace the others with full convs.
        "pool-first": ("Pool-Conv16-Conv32-Sep64-Pool-Sep128-Sep64-1x1(16)-Flatten (the preset, pooled first)",
                       lambda: [pool(2), *conv(16), *conv(32), *sep(64), pool(2), *sep(128), *sep(64), *flat(16)]),
        "stride2": ("Conv16/2-Conv32-Sep64-Pool-Sep128-Sep64-1x1(16)-Flatten (the preset, first conv strided)",
                    lambda: [*blk(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)), *conv(32), *sep(64),
                             pool(2), *sep(128), *sep(64), *flat(16)]),
        "full-conv": ("Conv16/2-Conv24-Pool-Conv48-Conv48-1x1(16)-Flatten (no depthwise)",
                      lambda: [*blk(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)), *conv(24), pool(2),
                               *conv(48), *conv(48), *flat(16)]),
    }


def build(keras, name: str):
    if name == "edge":
        return models.build("edge")
    layers = candidates(keras)[name][1]()
    return keras.Sequential([keras.Input((28, 28, 1), name="image"), *layers, keras.layers.Softmax()], name=name)


def int8_budget(model, calibration: np.ndarray, files: dict | None = None) -> dict:
    """Full-integer int8 file bytes and TFLite Micro arena bytes of `model` (its int8 and float32 TFLite files
    are put in `files` when given, for timing)."""
    import tensorflow as tf
    from tflite_micro.python.tflite_micro import runtime as micro

    from fmnist_edge.micro import capture_fd

    with tempfile.TemporaryDirectory() as tmp:
        model.export(f"{tmp}/saved", verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(f"{tmp}/saved")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
        blob = conv.convert()
        Path(f"{tmp}/m.tflite").write_bytes(blob)
        if files is not None:
            files["int8"] = blob
            files["float32"] = tf.lite.TFLiteConverter.from_saved_model(f"{tmp}/saved").convert()
        with capture_fd(2) as log:
            it = micro.Interpreter.from_file(f"{tmp}/m.tflite")
            it.set_input(np.zeros((1, 28, 28, 1), np.int8), 0)
            it.invoke()
            it.print_allocations()
    arena = re.search(r"Arena allocation total (\d+) bytes", log["text"])
    return {"int8_bytes": len(blob), "arena_bytes": int(arena.group(1)) if arena else None}


def latency(files: dict[str, dict], image: np.ndarray) -> dict[str, dict]:
    """{name: {float32_p50_us, int8_p50_us, int8_over_float32}}: batch 1, one thread, all files interleaved."""
    from ai_edge_litert.interpreter import Interpreter

    from fmnist_edge.bench import interleaved_p50

    calls = {}
    for name, pair in files.items():
        for kind, blob in pair.items():
            it = Interpreter(model_content=blob, num_threads=1)
            it.allocate_tensors()
            inp = it.get_input_details()[0]
            x = image if inp["dtype"] == np.float32 else np.round(image * 255 - 128).astype(np.int8)

            def call(it=it, index=inp["index"], x=x):
                it.set_tensor(index, x)
                it.invoke()

            calls[(name, kind)] = call
    p50 = interleaved_p50(calls, rounds=9, runs_per_round=200)
    return {name: {"float32_p50_us": round(p50[(name, "float32")], 1), "int8_p50_us": round(p50[(name, "int8")], 1),
                   "int8_over_float32": round(p50[(name, "int8")] / p50[(name, "float32")], 2)} for name in files}


def train(keras, model, ds, epochs: int, seed: int) -> dict:
    x, y = data.to_model_input(ds.x_train), ds.y_train.astype("int64")
    steps = int(np.ceil(len(y) / 128))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=epochs * steps)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    history = fit_augmented(model, x, y, "flip", seed, epochs=epochs, batch_size=128, verbose=0)
    fit = time.perf_counter() - t0
    _, acc = model.evaluate(data.to_model_input(ds.x_test), ds.y_test.astype("int64"), batch_size=1024, verbose=0)
    return {"test_accuracy": round(float(acc), 4), "train_accuracy": round(history["accuracy"][-1], 4),
            "fit_seconds": round(fit, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="architectures to measure (default: all)")
    p.add_argument("--epochs", type=int, default=0, help="also train each this many epochs on all 60,000 images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", action="store_true", help="also time each float32 and int8 file here (batch 1)")
    p.add_argument("--json", type=Path)
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args()
    import keras

    names = args.names or ["edge", *candidates(keras)]
    unknown = [n for n in names if n != "edge" and n not in candidates(keras)]
    if unknown:
        p.error(f"unknown architecture(s) {', '.join(unknown)}; choose from edge, {', '.join(candidates(keras))}")
    ds = data.load(args.data_dir, download=False)
    calibration = data.to_model_input(ds.x_train[:100])
    rows, files = [], {}
    for name in names:
        keras.utils.set_random_seed(args.seed)
        model = build(keras, name)
        row = {"name": name, "layers": "the preset" if name == "edge" else candidates(keras)[name][0],
               "params": model.count_params(), "mflop": round(models.flops_per_image(model) / 1e6, 3)}
        if args.epochs:
            row.update(train(keras, model, ds, args.epochs, args.seed))
        else:  # untrained, every folded bias is 0 and the converter stores equal buffers once: 3.5 KB too small
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(calibration, ds.y_train[:len(calibration)].astype("int64"), batch_size=20, verbose=0)
        row.update(int8_budget(model, calibration, files.setdefault(name, {}) if args.latency else None))  # trained ranges
        row["fits"] = row["mflop"] <= MFLOP and row["int8_bytes"] <= FLASH and (row["arena_bytes"] or ARENA + 1) <= ARENA
        rows.append(row)
        print(row, flush=True)

    if args.latency:
        timed = latency(files, calibration[:1])
        for row in rows:
            row.update(timed[row["name"]])
    table = Table(title=f"edge candidates (budget {MFLOP:g} MFLOP, int8 {FLASH // 1024} KiB, arena {ARENA // 1024} KiB)")
    cols = ["name", "params", "mflop", "int8_bytes", "arena_bytes", "fits"] + (
        ["test_accuracy", "train_accuracy", "fit_seconds"] if args.epochs else []) + (
        ["float32_p50_us", "int8_p50_us", "int8_over_float32"] if args.latency else [])
    for col in cols:
        table.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        table.add_row(*(f"{r[c]:,}" if isinstance(r[c], int) and not isinstance(r[c], bool) else str(r[c]) for c in cols))
    Console().print(table)
    if args.json:
        write_json(args.json, {"command": "python " + " ".join(sys.argv), "host": host_cpu(), "epochs": args.epochs,
                               "latency": "batch 1, 1 thread, p50 of 9 interleaved rounds x 200 calls" if args.latency else None,
                               "seed": args.seed, "augment": "flip" if args.epochs else None, "rows": rows})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

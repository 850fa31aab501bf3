"""Does TFLite 16x8 (int8 weights, int16 activations) earn a variant? Accuracy and agreement with Keras, file size,
batch-1 latency beside float32 and int8, and whether TensorFlow Lite Micro runs it, for both shipped releases.

    python scripts/int16x8_study.py [--json artifacts/int16x8_study.json]
"""
from __future__ import annotations
import argparse, json, os, tempfile, time
from pathlib import Path
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import tensorflow as tf
from fmnist_edge import data as fdata
from fmnist_edge.bench import percentiles, time_calls
from fmnist_edge.host import host_cpu, provenance
from fmnist_edge.keras_io import load_trained_model
from runtime.weights import compressed_size
from exporters.tflite import convert, int8_converter, to_float32

def int16x8(model, calibration):
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([calibration[i:i+1]] for i in range(len(calibration)))
    c.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    c.inference_input_type = tf.int16
    c.inference_output_type = tf.int16
    return convert(c)

def int8(model, calibration):
    return convert(int8_converter(tf.lite.TFLiteConverter.from_keras_model(model), calibration))

def run(model_bytes, x01, batch=250):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=model_bytes)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    def q(x):
        s, z = i["quantization"]
        return np.clip(np.round(x / s + z), np.iinfo(i["dtype"]).min, np.iinfo(i["dtype"]).max).astype(i["dtype"]) if s else x.astype(np.float32)
    def dq(y):
        s, z = o["quantization"]
        return (y.astype(np.float32) - z) * s if s else y
    it.resize_tensor_input(i["index"], [batch, 28, 28, 1]); it.allocate_tensors()
    out = []
    for k in range(0, len(x01), batch):
        it.set_tensor(i["index"], q(x01[k:k+batch])); it.invoke(); out.append(dq(it.get_tensor(o["index"])).copy())
    probs = np.concatenate(out)
    it.resize_tensor_input(i["index"], [1, 28, 28, 1]); it.allocate_tensors()
    one = q(x01[:1]); it.set_tensor(i["index"], one)
    lat = percentiles(time_calls(it.invoke, 20, 300))
    return probs, lat["p50_us"]

def micro_runs(model_bytes, x01):
    try:
        from tflite_micro.python.tflite_micro import runtime as micro
        interp = micro.Interpreter.from_bytes(model_bytes)
        d = interp.get_input_details(0)
        s, z = d["quantization_parameters"]["scales"][0], d["quantization_parameters"]["zero_points"][0]
        interp.set_input(np.clip(np.round(x01[:1] / s + z), -32768, 32767).astype(d["dtype"]), 0)
        interp.invoke()
        return True, None
    except Exception as exc:
        return False, f"{type(exc).__name__}: {str(exc)[:200]}"

def main():
    p = argparse.ArgumentParser(); p.add_argument("--json", default="artifacts/int16x8_study.json"); a = p.parse_args()
    ds = fdata.load(download=False)
    cal = ds.x_train[fdata.subset(ds.y_train, 500, 0)][..., None].astype("float32") / 255
    x = ds.x_test[..., None].astype("float32") / 255; y = ds.y_test
    rows = []
    for release in ("artifacts/reference", "artifacts/edge"):
        model = load_trained_model(Path(release) / "model.keras")
        keras_probs = model.predict(x, batch_size=1024, verbose=0)
        for name, make in (("tflite-float32", lambda: to_float32(model)), ("tflite-int8", lambda: int8(model, cal)),
                           ("tflite-int16x8", lambda: int16x8(model, cal))):
            t0 = time.perf_counter(); data = make(); secs = time.perf_counter() - t0
            probs, p50 = run(data, x)
            with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
                f.write(data); f.flush(); packed = compressed_size(Path(f.name))
            ok, why = micro_runs(data, x) if name != "tflite-float32" else (None, None)
            rows.append({"release": release, "variant": name, "accuracy": float((probs.argmax(1) == y).mean()),
                         "keras_accuracy": float((keras_probs.argmax(1) == y).mean()),
                         "agreement": float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
                         "bytes": len(data), "zlib9_bytes": packed, "p50_us": p50, "convert_seconds": round(secs, 1),
                         "runs_on_tflite_micro": ok, "micro_error": why})
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()})
    out = {"command": "python scripts/int16x8_study.py --json " + a.json, "host": host_cpu(), "threads": 1, "test_images": int(len(y)),
           "calibration_images": int(len(cal)), "rows": rows, **provenance("tensorflow", "ai-edge-litert", "tflite-micro")}
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print("wrote", a.json)

if __name__ == "__main__":
    main()

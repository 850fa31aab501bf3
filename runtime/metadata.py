"""What an exported model file says about itself, so a .tflite or .onnx copied alone into an app still carries
its labels and its input contract.

The same entries go into both formats, each a key with a compact JSON value:

    fmnist_edge.schema_version  1
    fmnist_edge.variant         "tflite-int8"
    fmnist_edge.labels          ["T-shirt/top", ...]        one per output, in output order
    fmnist_edge.input           shape, dtype, layout, pixel range, polarity, normalization, the preprocessing steps
    fmnist_edge.output          shape, dtype, what the numbers mean
    fmnist_edge.quantization    scale and zero point of the input and output tensors (null for float boundaries)
    fmnist_edge.photo           the photo -> 28x28 conversion's parameters (runtime/photo.json) the model was judged with
    fmnist_edge.run             the producing run: its model.keras sha256, name and architecture

In a .tflite they are entries of the model's own `metadata` table (a name and a buffer holding the text), the
mechanism TFLite uses for its `min_runtime_version` and `CONVERSION_METADATA`, read here through LiteRT's own
schema module; in a .onnx they are `metadata_props`. (TFLite Support's metadata format is not used: its last
release needs protobuf < 4, which TensorFlow 2.21 cannot install beside.)
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ManifestError, RuntimeArtifactError

PREFIX = "fmnist_edge."
SCHEMA_VERSION = 1
KEYS = ("schema_version", "variant", "labels", "input", "output", "quantization", "photo", "run")
POLARITY = "light garment on dark background (0 = background), as Fashion-MNIST"
CONTAINERS = {"tflite": "TFLite Model.metadata (name -> buffer)", "onnx": "ONNX ModelProto.metadata_props"}


def describe(manifest: dict, photo: dict) -> dict[str, str]:
    """The entries to embed for an artifact, from its manifest (as export writes it) and the photo parameters."""
    pre = manifest["preprocessing"]
    folded = pre.get("model_input")
    doc = {
        "schema_version": SCHEMA_VERSION,
        "variant": manifest["variant"],
        "labels": list(manifest["class_names"]),
        "input": {
            **{k: manifest["input"][k] for k in ("shape", "dtype", "layout") if k in manifest["input"]},
            "pixels": "uint8 grayscale 28x28, 0..255",
            "polarity": POLARITY,
            # x = pixel * scale + offset is what the float graph sees; a folded contract happens inside it
            "normalization": {"scale": 1 / 255, "offset": 0.0, "range": list(pre.get("input_range", [0.0, 1.0]))},
            **({"model_input": folded} if folded else {}),
            "preprocessing": pre,
        },
        "output": {k: manifest["output"][k] for k in ("shape", "dtype", "layout") if k in manifest["output"]}
        | {"meaning": "class probabilities, in label order"},
        "quantization": {"input": manifest["input"].get("quantization"), "output": manifest["output"].get("quantization"),
                         "formula": "real = scale * (q - zero_point)"},
        "photo": {k: v for k, v in photo.items() if k != "about"},
        "run": {k: manifest.get("lineage", {}).get(k) for k in ("keras_model_sha256", "run", "model")},
    }
    return {PREFIX + k: json.dumps(doc[k], separators=(",", ":"), sort_keys=True) for k in KEYS}


def record(fmt: str, entries) -> dict:
    """What a manifest says about the metadata embedded in its model file."""
    return {"container": CONTAINERS[fmt], "keys": sorted(k for k in entries if k.startswith(PREFIX))}


def parse(entries: dict[str, str], source: str) -> dict | None:
    """The embedded document from raw key -> text entries; None if the file carries none (exported before
    fmnist-edge embedded them, or by another tool). Malformed entries are refused."""
    ours = {k[len(PREFIX):]: v for k, v in entries.items() if k.startswith(PREFIX)}
    if not ours:
        return None
    missing = [k for k in KEYS if k not in ours]
    if missing:
        raise ManifestError(f"{source}: embedded metadata lacks {', '.join(PREFIX + k for k in missing)}; "
                            "the file was edited. Re-export it, or load it with its manifest.json.")
    doc = {}
    for key in KEYS:
        try:
            doc[key] = json.loads(ours[key])
        except ValueError as exc:
            raise ManifestError(f"{source}: embedded metadata {PREFIX}{key} is not valid JSON ({exc}).") from None
    if doc["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(f"{source}: embedded metadata schema_version {doc['schema_version']!r} is not supported "
                            f"(this runtime reads {SCHEMA_VERSION}); upgrade fmnist-edge.")
    for key, typ in (("variant", str), ("labels", list), ("input", dict), ("quantization", dict), ("run", dict)):
        if not isinstance(doc[key], typ):
            raise ManifestError(f"{source}: embedded metadata {PREFIX}{key} must be a {typ.__name__}, got {doc[key]!r}.")
    if not isinstance(doc["input"].get("preprocessing"), dict):
        raise ManifestError(f"{source}: embedded metadata {PREFIX}input has no preprocessing object.")
    return doc


def read_tflite(path: Path) -> dict[str, str]:
    """The name -> text entries of a .tflite's metadata table, read with LiteRT's schema module (not by hand)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # tflite-runtime devices: no schema module, so the file cannot describe itself here
        return {}
    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        name = (meta.Name() or b"").decode("utf-8", "replace")
        if not name.startswith(PREFIX):
            continue  # TFLite's own entries (min_runtime_version, CONVERSION_METADATA) are binary
        buffer = model.Buffers(meta.Buffer())
        # Files over 2 GB keep buffers after the flatbuffer (offset, size); ours never are, but read both kinds.
        data = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else buf[buffer.Offset():buffer.Offset() + buffer.Size()]
        entries[name] = data.decode("utf-8", "replace")
    return entries


def contradictions(doc: dict, manifest: dict) -> list[str]:
    """Where the file's embedded metadata and the manifest beside it disagree (empty when they agree)."""
    found = []

    def differ(what: str, embedded, declared) -> None:
        if embedded != declared:
            found.append(f"{what}: the file says {embedded!r}, the manifest {declared!r}")

    differ("variant", doc["variant"], manifest["variant"])
    differ("labels", doc["labels"], manifest["class_names"])
    differ("preprocessing", doc["input"]["preprocessing"], manifest["preprocessing"])
    lineage = manifest.get("lineage") or {}
    if lineage.get("keras_model_sha256"):
        differ("producing run (model.keras sha256)", doc["run"].get("keras_model_sha256"), lineage["keras_model_sha256"])
    for which in ("input", "output"):
        if not same_quantization(doc["quantization"].get(which), manifest[which].get("quantization")):
            differ(f"{which} quantization", doc["quantization"].get(which), manifest[which].get("quantization"))
    return found


def same_quantization(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.get("zero_point") == b.get("zero_point") and abs(a.get("scale", 0) - b.get("scale", 0)) <= 1e-6 * abs(b["scale"])


def refuse_contradictions(model: Path, doc: dict | None, manifest: dict) -> None:
    if doc is None:
        return
    found = contradictions(doc, manifest)
    if found:
        raise RuntimeArtifactError(f"{model}: its embedded metadata contradicts the manifest beside it ({'; '.join(found)}). "
                                   "One of them was edited or they come from different exports; re-copy the artifact "
                                   "directory as export wrote it.")

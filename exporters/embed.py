"""Write runtime.metadata's entries into an exported model file, in place: TFLite metadata-table entries or ONNX
metadata_props. Neither touches the graph; export checks the stamped file against Keras like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime.metadata import PREFIX


def embed(path: Path, fmt: str, entries: dict[str, str]) -> None:
    """Write `entries` into the file, replacing entries of the same names (stamping twice gives the same file)."""
    (_embed_tflite if fmt == "tflite" else _embed_onnx)(Path(path), entries)


def _embed_tflite(path: Path, entries: dict[str, str]) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    model.metadata, model.buffers = model.metadata or [], model.buffers or []
    # Re-stamping rewrites the buffers of entries already there, so a file never accumulates stale copies.
    existing = {m.name.decode(): m for m in model.metadata if (m.name or b"").decode().startswith(PREFIX)}
    for name, text in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        if name in existing:
            model.buffers[existing[name].buffer] = buffer
            continue
        model.buffers.append(buffer)
        meta = schema.MetadataT()
        meta.name, meta.buffer = name, len(model.buffers) - 1
        model.metadata.append(meta)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


def _embed_onnx(path: Path, entries: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in [*kept, *entries.items()]:
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))

"""Bring your own Keras model: check a `.keras` / `.h5` classifier against what the toolkit supports, wrap
it into the export contract and write a run directory (lineage "external") that export then treats like
any trained run.

The contract every artifact keeps: input float32 (N, 28, 28, 1) in [0, 1] named `image`, output softmax
probabilities (N, 10) named `probabilities`. A model is wrapped to meet it, never retrained:
    image -> [fit: zero-pad or resize to the model's side, the grey channel tiled to RGB]
          -> [input contract: image * scale + offset] -> [Reshape to (28, 28) or (784,)] -> the user's model
          -> [Softmax if logits]
so the preprocessing a device applies (uint8 / 255) is the same for every artifact, and what the
user's model expects (raw pixels, [-1, 1], standardised pixels, a channel-less or flat input, 28x28 grey pixels
replicated to RGB, the images padded or resized to another side) lives inside the exported graph
(exporters.contract). Padding or resizing is told apart on real test images, as the contract is, unless declared
(--input-fit). A head that is not a single-label softmax (sigmoids, one score per class independently) is refused
with what would work: its probabilities do not sum to 1, and a softmax over them would invent numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_edge import CLASS_NAMES
from fmnist_edge import data as fdata
from fmnist_edge.keras_io import load_trained_model
from fmnist_edge.atomic import committed_dir, write_json
from fmnist_edge.host import provenance
from fmnist_edge.manifest import INPUT_SPEC, OUTPUT_SPEC, PREPROCESSING, sha256_file
from fmnist_edge.paths import check_output_dir

from . import contract as input_contract
from .contract import InputContract
from .errors import ExportError

SUFFIXES = (".keras", ".h5", ".hdf5")
OUTPUT_KINDS = ("auto", "probabilities", "logits")
FITS = ("auto", "pad", "resize")
MAX_SIDE = 512  # an input side larger than this is not a Fashion-MNIST classifier's


@dataclass(frozen=True)
class ExternalModel:
    """How to read a model the toolkit did not train (the CLI's --input-range/--input-norm/--input-scale, --output,
    --labels)."""

    contract: InputContract | None = None  # None: [0, 1] is assumed, and checked against the common conventions
    output: str = "auto"  # auto: detected from the last layer
    labels: tuple[str, ...] | None = None  # default: Fashion-MNIST's class names
    fit: str = "auto"  # how 28x28 reaches another input side: "pad", "resize", or auto (told apart on test images)


def is_model_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def read_labels(path: Path) -> tuple[str, ...]:
    """Ten class names, one per line, in output order."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"--labels {path}: cannot read it as UTF-8 text ({exc}).") from None
    names = tuple(line for line in lines if line)
    if len(names) != 10:
        raise ExportError(f"--labels {path}: expected 10 class names, one per line in output order, found {len(names)}.")
    if len(set(names)) != 10:
        raise ExportError(f"--labels {path}: class names must be unique (duplicates: "
                          f"{sorted({n for n in names if names.count(n) > 1})}).")
    if any(not n.isprintable() or len(n) > 64 for n in names):
        raise ExportError(f"--labels {path}: class names must be printable text of at most 64 characters.")
    return names


def _is_external_run(path: Path) -> bool:
    import json

    try:
        return json.loads((path / "manifest.json").read_text()).get("lineage") == "external"
    except (OSError, ValueError, AttributeError):
        return False


def external_data(limit: int | None, data_dir: str | None, download: bool) -> dict:
    """The whole real training split (calibration, fine-tuning) and test split, or seeded subsets."""
    ds = fdata.load(data_dir, download)
    tr = fdata.subset(ds.y_train, limit, 0) if limit else np.arange(len(ds.y_train))
    te = fdata.run_test_subset(ds.y_test, limit, None)
    return {"x_fit": fdata.to_model_input(ds.x_train[tr]), "y_fit": ds.y_train[tr],
            "x_test": fdata.to_model_input(ds.x_test[te]), "y_test": ds.y_test[te], "source": ds.source}


def _last_layer(model):
    layer = model.layers[-1]
    return _last_layer(layer) if hasattr(layer, "layers") and layer.layers else layer


def _activation(layer) -> str | None:
    kind = type(layer).__name__
    if kind == "Softmax":
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", None)


SIGMOID_FIX = ("If it was trained on one label per image, its largest score is the class: give it a softmax over the "
               "same scores instead (in Keras: model.layers[-1].activation = keras.activations.softmax; "
               "model.save('softmax.keras')), which keeps the top-1 and makes the outputs probabilities that sum to 1, "
               "and export that file.")


def _not_single_label(source: str, kind: str, act: str) -> ExportError:
    return ExportError(f"{source}: not a single-label softmax classifier: its last layer is {kind} with activation {act}, "
                       "one independent score per class, so its outputs do not sum to 1 and are neither probabilities of "
                       "one class nor logits (a softmax over them would report numbers the model never computed). "
                       f"{SIGMOID_FIX} Nothing was exported.")


def detect_output(model, declared: str = "auto", source: str = "the model") -> str:
    """'probabilities' or 'logits': from the last layer, or as declared; a sigmoid (or other squashing) head is refused
    either way, and an undetectable one asks the user to declare it."""
    last = _last_layer(model)
    kind, act = type(last).__name__, _activation(last)
    if act in ("sigmoid", "hard_sigmoid", "tanh", "softsign"):
        raise _not_single_label(source, kind, act)
    if declared != "auto":
        return declared
    if act == "softmax":
        return "probabilities"
    if act == "linear" and kind in ("Dense", "Conv2D", "Activation"):
        return "logits"
    raise ExportError(f"cannot tell whether the model outputs probabilities or logits: its last layer is {kind}"
                      f"{f' with activation {act}' if act else ''}. Declare it with --output probabilities or --output logits.")


INPUT_SHAPES = ((28, 28, 1), (28, 28), (784,))  # what the wrapper can reshape the (N, 28, 28, 1) image into


def check_shapes(model, source: str) -> tuple[int, ...]:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{source}: the model has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); "
                          "supported: one image input and one output of 10 classes.")
    shape, out = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if shape[1:] in ((1, 28, 28), (3, 28, 28)):
        # Reshaping the pixels would be exact (one channel), but a channels-first model's own layers (Conv2D with
        # data_format="channels_first") do not convert to TFLite's NHWC kernels; refuse before any work is done.
        raise ExportError(f"{source}: input shape {shape} is channels-first (PyTorch's layout); TFLite, ONNX Runtime's "
                          "NHWC path and every device here feed (N, 28, 28, 1). Rebuild the model with "
                          "keras.Input((28, 28, 1)) and channels_last layers (the weights of Conv2D and Dense layers "
                          "carry over unchanged), save it, and export that file.")
    image = len(shape) == 4 and shape[3] in (1, 3) and all(isinstance(d, int) and 8 <= d <= MAX_SIDE for d in shape[1:3])
    if shape[1:] not in INPUT_SHAPES and not image:
        raise ExportError(f"{source}: input shape {shape} is not supported; fmnist-edge exports Fashion-MNIST "
                          "classifiers of grayscale 28x28 images: input (None, 28, 28), (None, 28, 28, 1) or flat "
                          "(None, 784), or an image input (None, H, W, 1) or (None, H, W, 3) of another side (8 to "
                          f"{MAX_SIDE} pixels), which the export fits 28x28 into by padding or resizing and whose 3 "
                          "channels get the grey pixels replicated.")
    if out[1:] != (10,):
        raise ExportError(f"{source}: output shape {out} is not supported; expected (None, 10): one score per "
                          "Fashion-MNIST class.")
    return shape


def fits_for(shape: tuple) -> tuple[str | None, ...]:
    """How the 28x28 image can reach the model's side: None when it is 28x28; zero-padding (centred, the background
    value) only when both sides are at least 28; resizing (bilinear) always."""
    if len(shape) != 4 or tuple(shape[1:3]) == (28, 28):
        return (None,)
    return ("pad", "resize") if min(shape[1:3]) >= 28 else ("resize",)


def _rgb(shape: tuple) -> bool:
    return len(shape) == 4 and shape[3] == 3


def fitted_to(x, shape: tuple, fit: str | None):
    """`x`, (N, 28, 28, 1) pixels, taken to the model's side with `fit` (zero-padding centred, or bilinear resizing)
    and, for a 3-channel model, its grey channel replicated, as the model's user fed it. Applied in pixel units,
    before the input contract (a pad is the background's 0 pixels, -1 under a [-1, 1] contract)."""
    import keras

    if fit is not None:
        h, w = int(shape[1]), int(shape[2])
        top, left = (h - 28) // 2, (w - 28) // 2
        x = (keras.layers.Resizing(h, w, interpolation="bilinear", name="fit_resize") if fit == "resize" else
             keras.layers.ZeroPadding2D(((top, h - 28 - top), (left, w - 28 - left)), name="fit_pad"))(x)
    return keras.layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x]) if _rgb(shape) else x


def adapter(shape: tuple, fit: str | None):
    """numpy (N, 28, 28, 1) in [0, 1] -> the model's input layout, before the contract (the checks, and tests)."""
    import keras

    if fit is None and not _rgb(shape):
        return lambda x01: x01
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, fitted_to(inp, shape, fit))
    return lambda x01: np.asarray(model.predict(x01, batch_size=1000, verbose=0))


def wrap(model, input_shape: tuple, contract: InputContract, output: str, fit: str | None = None):
    """The user's model inside the export contract (see the module docstring)."""
    import keras

    inp = keras.Input((28, 28, 1), name="image")
    x = fitted_to(inp, input_shape, fit)  # in pixel units: a pad is the background's 0, whatever the contract
    x = x if contract.is_identity else keras.layers.Rescaling(contract.scale, contract.offset, name="input_contract")(x)
    if input_shape[1:] in ((28, 28), (784,)):
        x = keras.layers.Reshape(input_shape[1:], name="reshape_input")(x)
    y = model(x)
    y = keras.layers.Softmax(name="probabilities")(y) if output == "logits" else keras.layers.Identity(name="probabilities")(y)
    return keras.Model(inp, y, name=f"external_{model.name}")


def choose_fit(model, shape: tuple, declared: str, x01: np.ndarray, y: np.ndarray, contract: InputContract | None,
               source: str) -> tuple[dict, np.ndarray]:
    """(the fit to use, "pad", "resize" or None, with every candidate's score on real test images under each input
    convention; `x01` fitted that way). `declared` (not "auto") is used as given when the shape allows it."""
    options = fits_for(shape)
    if declared != "auto":
        if options == (None,):
            raise ExportError(f"--input-fit {declared}: {source} takes 28x28 images already; nothing to fit.")
        if declared not in options:
            raise ExportError(f"--input-fit {declared}: {source}'s input side {shape[1]}x{shape[2]} is smaller than 28, "
                              "so 28x28 can only be resized to it (--input-fit resize).")
    reshape = (-1, *shape[1:])
    conventions = dict(input_contract.CONVENTIONS, **({"declared": contract} if contract else {}))
    fitted = {fit: adapter(shape, fit)(x01) for fit in options}
    scores = {fit: input_contract.score(lambda x: model.predict(x.reshape(reshape), batch_size=1000, verbose=0),
                                        fitted[fit], y, conventions) for fit in options}
    chosen = declared if declared != "auto" else max(options, key=lambda f: max(scores[f].values()))
    return {"fit": chosen, "declared": declared != "auto", "from": [28, 28, 1], "to": list(shape[1:]),
            "tiled_to_rgb": _rgb(shape),
            "accuracy_by_fit": {str(f): {k: round(v, 4) for k, v in sc.items()} for f, sc in scores.items()}}, fitted[chosen]


def check_target(out: Path, overwrite: bool) -> None:
    """`out` may be created: empty or absent, or (with --overwrite) an earlier export of a model file, nothing else."""
    check_output_dir(out, "--out")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        if not overwrite:
            raise ExportError(f"{out} already exists; pass --overwrite to replace it or choose another --out.")
        if not _is_external_run(out):
            raise ExportError(f"{out} exists and is not a run directory written by exporting a model file; "
                              "refusing to replace it. Choose another --out.")


def check_spec(spec: ExternalModel, limit: int | None) -> None:
    if spec.output not in OUTPUT_KINDS:
        raise ExportError(f"--output must be one of {', '.join(OUTPUT_KINDS)}, got {spec.output!r}.")
    if spec.fit not in FITS:
        raise ExportError(f"--input-fit must be one of {', '.join(FITS)}, got {spec.fit!r}.")
    if limit is not None and limit < 20:
        raise ExportError(f"--limit must be at least 20 images (2 per class), got {limit}.")


def check_probabilities(probs: np.ndarray, output: str, source) -> None:
    """Outputs taken as probabilities must sum to 1 (a head giving scores before any softmax is logits)."""
    if output == "probabilities" and not np.allclose(probs.sum(1), 1.0, atol=1e-3):
        raise ExportError(f"{source}: its outputs do not sum to 1 (e.g. {probs[0].sum():.3g}), so they are not "
                          "probabilities of one class. If its last layer gives scores before any softmax, pass --output "
                          f"logits. {SIGMOID_FIX} Nothing was exported.")


def write_run(out: Path, file_name: str, save, source_model: dict, conventions: dict, checked: dict, fitted: dict | None,
              spec: ExternalModel, params: int, d: dict, limit: int | None, accuracy: float, libraries: tuple) -> Path:
    """The run directory of a model file: the wrapped model (`save(path)` writes it as `file_name`) and its manifest,
    committed at once."""
    contract = spec.contract or input_contract.CONVENTIONS["[0,1]"]
    fit = {k: fitted[k] for k in ("fit", "from", "to", "tiled_to_rgb")} if fitted and (
        fitted["fit"] or fitted["tiled_to_rgb"]) else {}
    with committed_dir(out, replace=True) as tmp:
        save(tmp / file_name)
        write_json(tmp / "manifest.json", {
            "schema_version": 1, "kind": "keras-run", "lineage": "external", "model": Path(source_model["name"]).stem,
            "model_file": {"path": file_name, "sha256": sha256_file(tmp / file_name),
                           "bytes": (tmp / file_name).stat().st_size},
            "source_model": source_model,
            "conventions": {**conventions, "input_scale": contract.scale, "input_contract": checked["contract"],
                            "input_scale_declared": checked["declared"],
                            "input_check": {k: checked[k] for k in ("convention", "accuracy_by_convention", "sample_images")},
                            **({"input_fit": fitted} if fitted else {})},
            "params": int(params),
            "input": INPUT_SPEC, "output": OUTPUT_SPEC,
            "preprocessing": {**PREPROCESSING, "model_input_scale": contract.scale, "model_input": checked["contract"],
                              **({"model_input_fit": fit} if fit else {}),
                              "note": f"the model's own input contract ({contract.describe()}) is applied inside the "
                                      "exported graph: devices feed pixels / 255 to every artifact"},
            "class_names": list(spec.labels or CLASS_NAMES),
            "class_names_source": "--labels" if spec.labels else "Fashion-MNIST",
            "recipe": None, "seed": None,
            "data": {"source": str(d["source"]), "limit": limit, "subset_seed": 0, "test_images": int(len(d["y_test"]))},
            "test_accuracy": accuracy,
            "test_accuracy_contract": contract.describe(),
            **provenance(*libraries),
        })
    return out


def prepare(path: Path, out: Path, spec: ExternalModel, limit: int | None, data_dir: str | None, download: bool,
            overwrite: bool, console) -> Path:
    """Check and wrap the model at `path`, measure it on the real test set, write the run directory `out`."""
    check_target(out, overwrite)
    check_spec(spec, limit)
    model = load_trained_model(path)
    shape = check_shapes(model, str(path))
    output = detect_output(model, spec.output, str(path))
    d = external_data(limit, data_dir, download)
    x_test, y_test = d["x_test"], d["y_test"]
    # The contract is checked on the bare model (the wrapper's arithmetic applied in numpy), on a class-balanced
    # sample of real test images, before anything is built or written.
    sample = fdata.subset(y_test, input_contract.SAMPLE_IMAGES, 0)
    reshape = (-1, *shape[1:])
    fitted, sample_fitted = choose_fit(model, shape, spec.fit, x_test[sample], y_test[sample], spec.contract, str(path))
    checked = input_contract.choose_contract(lambda x: model.predict(x.reshape(reshape), batch_size=1000, verbose=0),
                                             sample_fitted, y_test[sample], spec.contract, str(path))
    contract = spec.contract or input_contract.CONVENTIONS["[0,1]"]
    wrapped = wrap(model, shape, contract, output, fitted["fit"])
    probs = wrapped.predict(x_test, batch_size=1000, verbose=0)
    check_probabilities(probs, output, path)
    accuracy = float((probs.argmax(1) == y_test).mean())
    shown_fit = {None: "", "pad": ", 28x28 zero-padded to it", "resize": ", 28x28 resized to it"}[fitted["fit"]]
    console.print(f"{path.name}: input {shape}{shown_fit}{' (grey replicated to RGB)' if fitted['tiled_to_rgb'] else ''}, "
                  f"{output}, inputs {contract.describe()} "
                  f"({'declared' if spec.contract else 'assumed, and checked'}); Keras test accuracy {accuracy:.4f} "
                  f"on {len(y_test):,} real test images under that contract")
    source_model = {"name": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "format": "keras" if path.suffix.lower() == ".keras" else "h5",
                    "keras_class": type(model).__name__, "layers": len(model.layers)}
    conventions = {"input_shape": list(shape), "output": output, "output_declared": spec.output != "auto",
                   "wrapped_as": "image [0,1] -> zero-pad or resize to the model's side (input_fit), grey replicated to "
                                 "RGB if the model takes 3 channels -> image * scale + offset (the input contract) -> "
                                 "reshape to the model's input -> model -> softmax if logits"}
    return write_run(out, "model.keras", wrapped.save, source_model, conventions, checked, fitted, spec,
                     model.count_params(), d, limit, accuracy, ("keras", "numpy", "tensorflow"))

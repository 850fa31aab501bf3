"""A Keras 3 model rebuilt in tf_keras (Keras 2) as the same graph, with its trained weights: what
tensorflow-model-optimization 0.8.1 (QAT, pruning, clustering) needs, since it accepts only tf_keras models.

The user's graph is replayed node by node (Keras's own traversal of a functional graph, `_run_through_graph`), each
layer rebuilt in tf_keras from its config, so branches (Add, Concatenate: residual and Inception-style blocks) keep
their topology; nested models (the export wrapper around the user's model, a Sequential inside a functional
model) are laid out flat. What the rebuild changes, and why:
- layers that only act in training (augmentation, Dropout, noise) are left out: they are the identity at
  inference, tfmot has no recipe for them, and the exported graph never holds them;
- every layer gets a name unique in the clone (the wrapper's `probabilities` beside a user's `probabilities`, a
  Sequential's auto-names beside the outer model's: tf_keras refuses duplicates) and ending in SUFFIX, which no
  automatic name has: tfmot's transforms add layers with tf_keras's automatic names (a SeparableConv2D becomes a
  new `depthwise_conv2d` and `conv2d_N`), which must not meet a user's layer of that name. `source_name` gives the
  user's name back for the records.
The clone is checked numerically against the model on real images before it is used. `flat_keras` is the same
replay into fresh Keras 3 layers, for explain, which names each layer of the int8 file by the user's name.
"""

from __future__ import annotations

import inspect

import numpy as np

from .errors import FineTuneUnsupported

# Identity at inference: Keras's augmentation layers, Dropout and its variants, noise layers.
TRAINING_ONLY = ("RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomCrop",
                 "RandomBrightness", "RandomHeight", "RandomWidth", "RandomErasing", "RandomGrayscale",
                 "RandomSaturation", "RandomHue", "RandomSharpness", "RandomShear", "RandomColorJitter",
                 "RandomPosterization", "RandomInvert", "RandomPerspective", "RandomElasticTransform",
                 "AutoContrast", "Solarization", "AugMix", "CutMix", "MixUp", "RandAugment",
                 "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                 "GaussianDropout", "GaussianNoise", "ActivityRegularization")


SUFFIX = "__src"


def source_name(clone_name: str) -> str:
    """The user's layer name for a clone layer's name (`conv2d__src`, or `probabilities_1__src` where the wrapper's
    `probabilities` took the plain name first)."""
    return clone_name[: -len(SUFFIX)] if clone_name.endswith(SUFFIX) else clone_name


def library_detail(exc: Exception) -> str:
    """The library's own message, for `fmnist-edge --verbose` only (FMNIST_EDGE_VERBOSE=1): it names its internals,
    which a user cannot act on."""
    import os

    from runtime.backends import VERBOSE_ENV

    if os.environ.get(VERBOSE_ENV) == "1":
        return f" ({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
    return " (fmnist-edge --verbose shows the library's message)"


def _is_model(op) -> bool:
    return hasattr(op, "layers") and hasattr(op, "inputs") and type(op).__name__ in ("Functional", "Sequential", "Model")


def _graph(model):
    """The functional graph behind a model (a Sequential keeps one once built on an Input)."""
    graph = getattr(model, "_functional", None) if type(model).__name__ == "Sequential" else model
    if graph is None or not hasattr(graph, "_run_through_graph"):
        raise FineTuneUnsupported(f"model {model.name!r} ({type(model).__name__}) has no layer graph to rebuild: "
                                  "build it on a keras.Input (a subclassed model cannot be rebuilt)")
    return graph


def _leaf_layers(model, depth: int = 0):
    """(nesting depth, layer) for every layer of the model, nested models expanded."""
    for layer in model.layers:
        if _is_model(layer):
            yield from _leaf_layers(layer, depth + 1)
        elif type(layer).__name__ != "InputLayer":
            yield depth, layer


class _Rebuild:
    """Replays a Keras 3 model's graph with each layer's twin: a tf_keras layer (`target` tf_keras, for tfmot) or a
    fresh Keras 3 one (`target` keras: one flat level, for explain). Names are given out before the replay, the
    innermost model's first: the user's model sits inside the export wrapper, so the user's layers keep their own
    names and a wrapper layer of the same name gets a suffix."""

    def __init__(self, target, model, suffix: str):
        self.target, self.suffix = target, suffix
        self.names: dict[int, str] = {}
        self.taken = taken = set()
        for _, layer in sorted(_leaf_layers(model), key=lambda pair: -pair[0]):  # stable: graph order within a level
            if id(layer) in self.names:
                continue
            candidate, k = layer.name, 1
            while candidate in taken:
                candidate, k = f"{layer.name}_{k}", k + 1
            taken.add(candidate)
            self.names[id(layer)] = candidate + suffix
        self.layers: dict[int, object] = {}  # id(Keras 3 layer) -> its twin (a shared layer stays shared)
        self.pairs: list[tuple[object, object]] = []
        self.dropped: list[str] = []

    def twin(self, layer):
        if self.target.__name__ == "keras":
            cls, cfg = type(layer), layer.get_config()
        else:
            cls = getattr(self.target.layers, type(layer).__name__, None)
            if cls is None:
                raise FineTuneUnsupported(f"layer {layer.name!r} ({type(layer).__name__}) has no Keras 2 (tf_keras) "
                                          "equivalent, and tensorflow-model-optimization works on Keras 2 models only; "
                                          "post-training int8 (tflite-int8) and the float variants need no rebuild")
            allowed = (set(inspect.signature(cls.__init__).parameters) | {"trainable"}) - {"dtype", "name"}
            # initializers, regularizers and constraints are dropped: the trained weights are copied over
            cfg = {k: v for k, v in layer.get_config().items()
                   if k in allowed and not k.endswith(("_initializer", "_regularizer", "_constraint"))}
        try:
            return cls.from_config({**cfg, "name": self.names[id(layer)]})
        except Exception as exc:  # tf_keras validates configs with many exception types
            raise FineTuneUnsupported(f"layer {layer.name!r} ({type(layer).__name__}) could not be rebuilt in "
                                      f"{self.target.__name__} from its configuration{library_detail(exc)}") from None

    def operation(self, op):
        if _is_model(op):
            return lambda x, *args, **kwargs: self.run(op, x)
        if type(op).__name__ in TRAINING_ONLY:
            self.dropped.append(op.name)
            return lambda x, *args, **kwargs: x
        if id(op) not in self.layers:
            self.layers[id(op)] = self.twin(op)
            self.pairs.append((op, self.layers[id(op)]))
        twin = self.layers[id(op)]
        # Keras passes `training`/`mask` keywords in some graphs; the clone is called symbolically, without them.
        return lambda *args, **kwargs: twin(*args)

    def run(self, model, x):
        return _graph(model)._run_through_graph(x, operation_fn=self.operation)

    def build(self, model, name: str):
        if len(model.inputs) != 1:
            raise FineTuneUnsupported(f"the model has {len(model.inputs)} inputs; only one-input models are rebuilt")
        input_name, k = "image", 1  # the export contract's input name, unless a user's layer has it
        while input_name in self.taken:  # the layers' names before their suffix
            input_name, k = f"image_{k}", k + 1
        inp = self.target.Input(tuple(model.inputs[0].shape[1:]), name=input_name)
        clone = self.target.Model(inp, self.run(model, inp), name=name)
        for src, dst in self.pairs:
            try:
                dst.set_weights(src.get_weights())
            except ValueError as exc:
                raise FineTuneUnsupported(f"layer {src.name!r} ({type(src).__name__}): its trained weights do not fit "
                                          f"its rebuild{library_detail(exc)}") from None
        return clone


def tf_keras_graph(model, x_check: np.ndarray):
    """(the tf_keras clone with the trained weights, the names of the training-only layers left out); the clone is
    checked to compute what `model` computes on `x_check`."""
    import tf_keras

    rebuild = _Rebuild(tf_keras, model, SUFFIX)
    clone = rebuild.build(model, f"{model.name}_tf_keras")
    want = np.asarray(model.predict(x_check, verbose=0))
    got = clone.predict(x_check, verbose=0)
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-4):
        worst = float(np.abs(got - want).max()) if got.shape == want.shape else float("nan")
        raise FineTuneUnsupported(f"its tf_keras (Keras 2) rebuild computes something else (max difference {worst:.3g} "
                                  "on real test images): a layer behaves differently in the two Keras versions")
    return clone, rebuild.dropped


def flat_keras(model):
    """The model as one flat Keras 3 graph of fresh layers with its weights (nested models laid out, training-only
    layers left out, the user's layer names kept): every layer has its own name and output, for explain."""
    import keras

    return _Rebuild(keras, model, "").build(model, model.name)

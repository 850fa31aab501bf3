"""The presets: architectures and parameter counts from REFERENCE_MODELS.md, recipes and their validation."""

from __future__ import annotations

import pytest

from fmnist_edge.errors import ConfigError
from fmnist_edge.models import PRESETS, Recipe, build, get_preset, parse_validation

keras = pytest.importorskip("keras")

# From ../shared/REFERENCE_MODELS.md (l2-vgg: trunk + the documented minimal head).
EXPECTED = {
    "reference": (503_690, ["Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D", "MaxPooling2D", "Dropout",
                            "Flatten", "Dense", "Dense"]),
    "paper": (896_906, ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense",
                        "Dropout", "Dense"]),
    "l2-vgg": (157_162, ["Conv2D", "Conv2D", "MaxPooling2D", "Conv2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense"]),
    "l2-vgg-head": (676_842, ["Conv2D", "Conv2D", "MaxPooling2D", "Conv2D", "Conv2D", "MaxPooling2D", "Flatten",
                              "Dense", "Dropout", "Dense"]),
    "mlp": (101_770, ["Flatten", "Dense", "Dense"]),
    "edge": (43_930, [*["Conv2D", "BatchNormalization", "ReLU"] * 2, "MaxPooling2D",
                      *["Conv2D", "BatchNormalization", "ReLU"] * 3, "Flatten", "Dropout", "Dense", "Softmax"]),
    "edge-separable": (35_354, [*["Conv2D", "BatchNormalization", "ReLU"], "MaxPooling2D",
                                *["Conv2D", "BatchNormalization", "ReLU"], *["SeparableConv2D", "BatchNormalization", "ReLU"],
                                "MaxPooling2D", *["SeparableConv2D", "BatchNormalization", "ReLU"] * 2,
                                *["Conv2D", "BatchNormalization", "ReLU"], "Flatten", "Dropout", "Dense", "Softmax"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_architecture_and_parameter_count(name):
    model = build(name)
    params, layers = EXPECTED[name]
    assert model.count_params() == params == get_preset(name).params
    assert [type(layer).__name__ for layer in model.layers] == layers
    assert tuple(model.input_shape) == (None, 28, 28, 1)
    assert tuple(model.output_shape) == (None, 10)
    last = model.layers[-1]
    assert getattr(last, "activation", None).__name__ == "softmax" if not name.startswith("edge") else last.name == "probabilities"


def test_every_preset_is_tested():
    shipped = {name for name, p in PRESETS.items() if p.seed_docs != "tests"}  # conftest registers test-only ones
    assert shipped == set(EXPECTED)


def test_seed_recipes():
    assert get_preset("reference").recipe == Recipe(30, 512, "adam", 1e-3, 0.1)
    assert get_preset("paper").recipe == Recipe(50, 128, "adam", 1e-3, 10_000)
    assert get_preset("l2-vgg").recipe == Recipe(100, 32, "adam", 1e-3, "test")
    assert get_preset("mlp").recipe.epochs == 5 and get_preset("mlp").recipe.batch_size == 128


@pytest.mark.parametrize("name", ["l2-vgg", "l2-vgg-head"])
def test_l2_vgg_regularises_every_conv(name):
    convs = [layer for layer in build(name).layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 4 and all(c.kernel_regularizer is not None for c in convs)
    assert get_preset(name).recipe == get_preset("l2-vgg").recipe  # the head is the only difference


def test_overrides_and_their_errors():
    r = get_preset("reference").recipe.with_overrides(epochs=2, batch_size=None)
    assert r.epochs == 2 and r.batch_size == 512
    for bad, match in [({"epochs": 0}, "--epochs"), ({"batch_size": -1}, "--batch-size"),
                       ({"optimizer": "sgdx"}, "--optimizer must be one of adam, rmsprop"),
                       ({"learning_rate": 0.0}, "--learning-rate"), ({"validation": 1.5}, r"\[0, 1\)")]:
        with pytest.raises(ConfigError, match=match):
            get_preset("reference").recipe.with_overrides(**bad)


def test_parse_validation():
    assert parse_validation("0.1") == 0.1 and parse_validation("10000") == 10_000 and parse_validation("test") == "test"
    with pytest.raises(ConfigError, match="fraction like 0.1"):
        parse_validation("ten")


def test_unknown_model_lists_the_choices():
    with pytest.raises(ConfigError, match="Unknown model 'resnet'. Choose one of: reference, paper, l2-vgg, l2-vgg-head, mlp"):
        get_preset("resnet")


def test_flops_match_reference_models_md():
    from fmnist_edge.models import flops_per_image

    mflops = {name: flops_per_image(build(name)) / 1e6 for name in EXPECTED}
    assert round(mflops["reference"], 1) == 37.2 and round(mflops["paper"], 1) == 16.5
    assert round(mflops["mlp"], 1) == 0.2 and 47 < mflops["l2-vgg"] < 49
    assert mflops["edge"] <= 5.0 and mflops["edge-separable"] <= 5.0  # issue 12's compute budget
    for name, value in mflops.items():  # what `fmnist-edge models` states without building anything
        assert get_preset(name).mflop == pytest.approx(value, abs=0.01), name


def test_separable_conv_flops_by_hand():
    from fmnist_edge.models import flops_per_image

    model = keras.Sequential([keras.Input((14, 14, 8)), keras.layers.SeparableConv2D(16, 3, padding="same"),
                              keras.layers.DepthwiseConv2D(3, depth_multiplier=2)])
    # depthwise 14*14*9*8, pointwise 14*14*8*16; then depthwise 12*12*9*16*2 (valid padding); 2 FLOPs per multiply-add
    assert flops_per_image(model) == 2 * (14 * 14 * 9 * 8 + 14 * 14 * 8 * 16 + 12 * 12 * 9 * 16 * 2)


def test_recipes_written_before_the_training_options_still_read():
    old = {"epochs": 30, "batch_size": 512, "optimizer": "adam", "learning_rate": 1e-3, "validation": 0.1}
    r = Recipe(**old)
    assert (r.schedule, r.augment, r.distill) == ("constant", "none", False) and r == get_preset("reference").recipe
    # Before augmentation had strengths it was a bool, and True meant all of it.
    assert Recipe(**old, augment=True).augment == "flip+shift+erase" and Recipe(**old, augment=False).augment == "none"


def test_training_option_errors():
    for bad, match in [({"schedule": "step"}, "--schedule must be one of constant, cosine"),
                       ({"temperature": 0.0}, "--temperature"), ({"label_weight": 1.5}, "--label-weight must be from 0 to 1"),
                       ({"teacher_outputs": "soft"}, "--teacher-outputs must be one of cached, live"),
                       ({"augment": "rotate"}, "--augment must be one of none, flip, flip\\+shift, flip\\+shift\\+erase")]:
        with pytest.raises(ConfigError, match=match):
            get_preset("edge").recipe.with_overrides(**bad)


def test_runs_trained_before_the_edge_rename_resolve_to_the_preset_they_were_trained_as():
    """`edge` was the depthwise-separable model (35,354 params) until issue 26; the model that replaced it was
    trained as `edge-full-conv`. Exporting an old run rebuilds its preset by name, so the name must map."""
    from fmnist_edge.models import _RENAMED, preset_name_of_run

    assert preset_name_of_run("edge", 35_354) == "edge-separable"
    assert preset_name_of_run("edge-full-conv", 43_930) == "edge"
    assert preset_name_of_run("edge", 43_930) == "edge" and preset_name_of_run("reference", 503_690) == "reference"
    for (old, params), new in _RENAMED.items():
        assert get_preset(new).params == params, (old, new)

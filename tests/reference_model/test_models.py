"""The frozen reference models are layer-exact: parameter counts, every layer's output shape,
and the recorded architecture fingerprints."""
import pytest

from reference_model import models
from reference_model.fingerprint import architecture_fingerprint, flops_per_sample, recorded_fingerprints
from reference_model.specs import SPECS

PARAMETERS = {
    "fixed_generator": (872_948, 872_808),
    "fixed_discriminator": (73_450, 73_402),
    "angle_generator": (1_365_047, 1_364_983),
    "angle_discriminator": (87_402, 87_354),
}

# Output shapes (without the batch axis) of every layer, from 3dgan-reference.md section 2.
SHAPES = {
    "fixed_generator": {
        "dense": (3136,), "reshape": (7, 7, 8, 8), "conv1": (7, 7, 8, 64), "up1": (14, 14, 16, 64),
        "pad2": (18, 18, 16, 64), "conv2": (13, 14, 9, 6), "up2": (26, 28, 27, 6),
        "pad3": (28, 28, 33, 6), "conv3": (26, 26, 26, 6), "conv4": (25, 25, 25, 1),
        "relu_out": (25, 25, 25, 1)},
    "fixed_discriminator": {
        "conv1": (25, 25, 25, 32), "conv2": (25, 25, 25, 8), "conv3": (25, 25, 25, 8),
        "conv4": (23, 23, 23, 8), "pool": (11, 11, 11, 8), "flatten": (10648,),
        "generation": (1,), "auxiliary": (1,), "ecal": (1,)},
    "angle_generator": {
        "dense": (5184,), "reshape": (9, 9, 8, 8), "up1": (54, 54, 48, 8), "conv1": (49, 49, 41, 8),
        "conv2": (50, 50, 38, 6), "conv3": (51, 51, 35, 6), "conv4": (52, 52, 32, 6),
        "conv5": (52, 52, 28, 6), "conv6": (52, 52, 26, 6), "conv7": (51, 51, 25, 1)},
    "angle_discriminator": {
        "conv1": (51, 51, 25, 16), "pad2": (51, 51, 27, 16), "conv2": (47, 46, 22, 8),
        "conv3": (43, 41, 19, 8), "conv4": (39, 36, 14, 8), "pool": (19, 18, 7, 8),
        "flatten": (19152,), "generation": (1,), "auxiliary": (1,), "angle": (1,), "ecal": (1,)},
}


@pytest.fixture(scope="module", params=sorted(PARAMETERS))
def built(request):
    return request.param, getattr(models, request.param)()


def test_parameter_counts(built):
    name, model = built
    total, trainable = PARAMETERS[name]
    assert model.count_params() == total
    assert sum(int(v.numpy().size) for v in model.trainable_variables) == trainable


def test_layer_output_shapes(built):
    name, model = built
    for layer_name, shape in SHAPES[name].items():
        assert tuple(model.get_layer(layer_name).output.shape[1:]) == shape, layer_name


def test_layer_hyperparameters(built):
    _, model = built
    for layer in model.layers:
        cfg = layer.get_config()
        if type(layer).__name__ == "LeakyReLU":
            assert cfg["negative_slope"] == pytest.approx(0.3)
        if type(layer).__name__ == "BatchNormalization":
            assert cfg["epsilon"] == pytest.approx(1e-6) and cfg["momentum"] == pytest.approx(0.99)
        if type(layer).__name__ == "UpSampling3D":
            assert cfg["data_format"] == "channels_last"


def test_fingerprints_match_the_recorded_ones():
    recorded = recorded_fingerprints()
    for spec in SPECS.values():
        assert architecture_fingerprint(spec.build_generator()) == recorded[f"{spec.name}-generator"]
        assert architecture_fingerprint(spec.build_discriminator()) == recorded[f"{spec.name}-discriminator"]


def test_fingerprint_detects_drift():
    import keras

    model = models.fixed_generator()
    latent = keras.Input((200,))
    x = keras.layers.Dense(3136, name="dense")(latent)  # same first layer ...
    x = keras.layers.Reshape((7, 7, 8, 8), name="reshape")(x)
    x = keras.layers.Conv3D(64, (5, 6, 8), padding="same", name="conv1")(x)  # ... kernel changed
    drifted = keras.Model(latent, x)
    assert architecture_fingerprint(drifted) != architecture_fingerprint(model)


def test_generator_flops_match_the_issue_estimate():
    assert flops_per_sample(models.fixed_generator()) == pytest.approx(0.51e9, rel=0.01)

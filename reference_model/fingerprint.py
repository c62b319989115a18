"""What makes the reference models "frozen": a name, a version, an architecture fingerprint,
parameter counts and FLOPs per shower, computed from the layer configuration itself.

The fingerprint hashes each layer's class and the configuration fields that define the
computation (not names or Keras bookkeeping), plus its output shape, so it is stable across
Keras releases but changes with any change of kernel, padding, width, activation or order.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from reference_model.specs import MODEL_VERSION, SPECS

RECORDED_FINGERPRINTS = Path(__file__).with_name("fingerprints.json")
_ARCH_FIELDS = ("units", "filters", "kernel_size", "strides", "padding", "activation", "use_bias",
                "epsilon", "momentum", "size", "pool_size", "rate", "negative_slope", "target_shape",
                "max_value", "threshold", "data_format", "axis")


def _initializer_name(config: dict, key: str) -> str | None:
    init = config.get(key)
    return init.get("class_name") if isinstance(init, dict) else init


def layer_description(layer: keras.layers.Layer) -> dict:
    config = layer.get_config()
    desc = {"class": type(layer).__name__,
            "output_shape": _shape(layer.output.shape if hasattr(layer, "output") else None)}
    for field in _ARCH_FIELDS:
        if field in config:
            value = config[field]
            desc[field] = list(value) if isinstance(value, tuple) else value
    if "kernel_initializer" in config:
        desc["kernel_initializer"] = _initializer_name(config, "kernel_initializer")
    if type(layer).__name__ == "Lambda":
        desc["function"] = layer.function.__name__
    return desc


def _shape(shape) -> list | None:
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_shape(s) for s in shape]
    return [d for d in tuple(shape)]


def architecture_fingerprint(model: keras.Model) -> str:
    layers = [layer_description(layer) for layer in model.layers]
    blob = json.dumps(layers, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def layer_flops(model: keras.Model) -> list[int]:
    """Forward multiply-add FLOPs (2 per MAC) of each Dense and Conv3D layer, in order, per sample."""
    flops = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv3D):
            out = np.prod(layer.output.shape[1:4])
            k = np.prod(layer.kernel_size)
            flops.append(2 * int(out) * int(k) * int(layer.input.shape[-1]) * layer.filters)
        elif isinstance(layer, keras.layers.Dense):
            flops.append(2 * int(layer.input.shape[-1]) * layer.units)
    return flops


def flops_per_sample(model: keras.Model) -> int:
    """Forward FLOPs of the Dense and Conv3D layers, per sample."""
    return sum(layer_flops(model))


@dataclass
class ModelCard:
    name: str
    version: str
    role: str
    fingerprint: str
    parameters: int
    trainable_parameters: int
    flops_per_shower: int


def model_cards(benchmark: str) -> list[ModelCard]:
    spec = SPECS[benchmark]
    cards = []
    for role, model in (("generator", spec.build_generator()), ("discriminator", spec.build_discriminator())):
        trainable = int(sum(np.prod(v.shape) for v in model.trainable_variables))
        cards.append(ModelCard(name=f"{spec.name}-{role}", version=MODEL_VERSION, role=role,
                               fingerprint=architecture_fingerprint(model),
                               parameters=int(model.count_params()), trainable_parameters=trainable,
                               flops_per_shower=flops_per_sample(model)))
    return cards


def recorded_fingerprints() -> dict[str, str]:
    return json.loads(RECORDED_FINGERPRINTS.read_text())


def all_cards() -> list[dict]:
    return [asdict(card) | {"benchmark": b} for b in SPECS for card in model_cards(b)]

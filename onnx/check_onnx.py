#!/usr/bin/env python3
"""Sanity-check an exported conv base the way MlNetTransfer will use it.

Loads <model>.onnx and its preprocessing spec <model>.onnx.json, preprocesses
one image exactly as the spec says, runs it with ONNX Runtime and prints the
output shape, the pooled feature vector and a few values.

    pip install onnxruntime pillow numpy        (onnx too, for --blocks)
    python check_onnx.py vgg16-keras.onnx --image cat.jpg
    python check_onnx.py vgg16-torchvision.onnx --image cat.jpg --blocks

Without --image a synthetic gradient image is used. The spec format is
documented in README.md.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="path to the .onnx file")
    p.add_argument("--spec", help="preprocessing spec (default: <model>.json)")
    p.add_argument("--image", help="image file (default: a synthetic gradient)")
    p.add_argument("--blocks", action="store_true",
                   help="also run up to every block listed in the spec and print its shape (needs `onnx`)")
    return p.parse_args()


def load_spec(path):
    if not os.path.exists(path):
        print(f"no spec at {path}: using the defaults (NCHW, RGB, scale 1, mean 0, std 1)")
        return {}
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    layout = spec.get("layout", "NCHW")
    order = spec.get("channelOrder", "RGB")
    if layout not in ("NCHW", "NHWC"):
        sys.exit(f"spec: layout must be NCHW or NHWC, not {layout!r}")
    if order not in ("RGB", "BGR"):
        sys.exit(f"spec: channelOrder must be RGB or BGR, not {order!r}")
    if spec.get("pooling", "avg") not in ("avg", "max", "flatten"):
        sys.exit(f"spec: pooling must be avg, max or flatten, not {spec['pooling']!r}")
    for key in ("mean", "std"):
        if key in spec and len(spec[key]) != 3:
            sys.exit(f"spec: {key} needs 3 values (one per channel, in channelOrder)")
    if any(s == 0 for s in spec.get("std", [])):
        sys.exit("spec: std values must not be 0")
    return spec


def input_size(spec, model_input):
    """Width/height as the tool takes them (224 unless the spec says otherwise), checked against the model."""
    width, height = int(spec.get("width", 224)), int(spec.get("height", 224))
    layout = spec.get("layout", "NCHW")
    shape = model_input.shape
    expected = [None, height, width, 3] if layout == "NHWC" else [None, 3, height, width]
    if len(shape) != 4 or any(isinstance(d, int) and e is not None and d != e for d, e in zip(shape, expected)):
        print(f"WARNING: the model input is {shape}, the spec feeds {layout} "
              f"{expected[1:]}; check layout/width/height")
    return width, height


def synthetic_image(width, height):
    """Deterministic RGB gradient, so the check runs without any image at hand."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def preprocess(image, spec, width, height):
    """x = (pixel * scale - mean) / std, pixel = 0..255 in channelOrder; one-image batch."""
    image = image.convert("RGB").resize((width, height), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32)  # H, W, C in RGB
    if spec.get("channelOrder", "RGB") == "BGR":
        x = x[..., ::-1]
    x = x * float(spec.get("scale", 1.0))
    x = (x - np.asarray(spec.get("mean", [0, 0, 0]), np.float32)) / np.asarray(spec.get("std", [1, 1, 1]), np.float32)
    if spec.get("layout", "NCHW") == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def pool(features, spec):
    """Feature vector as the tool builds it; assumes the output has the input's layout."""
    how = spec.get("pooling", "avg")
    if features.ndim != 4 or how == "flatten":
        return features.reshape(features.shape[0], -1)
    axes = (1, 2) if spec.get("layout", "NCHW") == "NHWC" else (2, 3)
    return features.mean(axis=axes) if how == "avg" else features.max(axis=axes)


def stats(a):
    return f"min {a.min():.4g}  max {a.max():.4g}  mean {a.mean():.4g}  std {a.std():.4g}"


def check_blocks(model_path, spec, x, input_name):
    """Promote the block tensors to graph outputs and run the graph up to each of them."""
    import onnx
    from onnx import helper

    blocks = spec.get("blocks", [])
    if not blocks:
        print("\nthe spec lists no blocks")
        return
    m = onnx.load(model_path)
    produced = {t for n in m.graph.node for t in n.output}
    missing = [b["output"] for b in blocks if b["output"] not in produced]
    if missing:
        sys.exit(f"block tensors not in the graph: {missing}")
    present = {o.name for o in m.graph.output}
    for b in blocks:
        if b["output"] not in present:
            m.graph.output.append(helper.make_tensor_value_info(b["output"], onnx.TensorProto.FLOAT, None))
            present.add(b["output"])
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [b["output"] for b in blocks]
    print("\nblocks:")
    for b, value in zip(blocks, session.run(names, {input_name: x})):
        print(f"  {b['name']:<8} {b['output']:<28} shape {list(value.shape)}  {stats(value)}")


def main():
    args = parse_args()
    spec = load_spec(args.spec or args.model + ".json")
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])

    inputs = session.get_inputs()
    input_name = spec.get("input") or (inputs[0].name if len(inputs) == 1 else None)
    if input_name is None:
        sys.exit(f"the graph has {len(inputs)} inputs; name one with \"input\" in the spec")
    model_input = next((i for i in inputs if i.name == input_name), None)
    if model_input is None:
        sys.exit(f"input {input_name!r} not in the graph; it has {[i.name for i in inputs]}")
    output_name = spec.get("output") or session.get_outputs()[0].name
    if output_name not in [o.name for o in session.get_outputs()]:
        sys.exit(f"output {output_name!r} is not a graph output; outputs: {[o.name for o in session.get_outputs()]}")

    width, height = input_size(spec, model_input)
    image = Image.open(args.image) if args.image else synthetic_image(width, height)
    x = preprocess(image, spec, width, height)
    print(f"model   {args.model} ({os.path.getsize(args.model) / 1e6:.1f} MB), spec name {spec.get('name', '-')!r}")
    print(f"image   {args.image or 'synthetic gradient'} -> {width}x{height}, "
          f"{spec.get('channelOrder', 'RGB')}, {spec.get('layout', 'NCHW')}")
    print(f"input   {input_name} declared {model_input.shape}, fed {list(x.shape)}  {stats(x)}")

    features = session.run([output_name], {input_name: x})[0]
    print(f"output  {output_name} shape {list(features.shape)}  {stats(features)}")
    vector = pool(features, spec)[0]
    print(f"pooled  ({spec.get('pooling', 'avg')}) feature vector of {vector.size} values")
    print(f"        first 8: {np.array2string(vector[:8], precision=4, separator=', ')}")
    print(f"        non-zero: {np.count_nonzero(vector)}/{vector.size}")
    if not np.all(np.isfinite(features)):
        print("WARNING: the output contains NaN or Inf")
    if np.count_nonzero(vector) == 0:
        print("WARNING: all features are zero; check the preprocessing spec")

    if args.blocks:
        check_blocks(args.model, spec, x, input_name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export the conv base of (almost) any torchvision CNN to ONNX for MlNetTransfer.

The conv base is the network up to its last spatial feature map: everything
before global pooling and the classifier. It is cut into named blocks so
MlNetTransfer can unfreeze the top one:

  resnet*, resnext*, wide_resnet*   stem, layer1 .. layer4
  regnet_*                          stem, block1 .. block4
  vgg*                              block1 .. block5 (each ends at a MaxPool)
  densenet*                         stem, block1 .. block4
  other models with a `features`    stage1 .. stageK (a new stage starts where
  Sequential (efficientnet_*,       the spatial resolution drops)
  mobilenet_*, convnext_*, ...)

Writes <model>-torchvision.onnx (input `input` NCHW, output `features`) and
the preprocessing spec <model>-torchvision.onnx.json beside it.

    python export_any_torchvision.py resnet50
    python export_any_torchvision.py efficientnet_b0 --weights IMAGENET1K_V1 --output models/effb0.onnx
"""

import argparse
import inspect
import os
from collections import OrderedDict

import numpy as np
import onnx
import torch
from torch import nn
from torchvision import models

from _common import (compare, describe, graph_inputs, name_batch_dim, run_onnxruntime,
                     tensor_shapes, write_spec)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="torchvision model name, e.g. resnet50, vgg19_bn, efficientnet_b0")
    p.add_argument("--weights", default="DEFAULT",
                   help="torchvision weights name (DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2, ...) or 'none' "
                        "for random weights (no download; only to test the pipeline)")
    p.add_argument("--output", help="ONNX file to write (default: <model>-torchvision.onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--size", type=int, help="input width/height (default: the weights' crop size, else 224)")
    return p.parse_args()


def split_by_resolution(layers, size):
    """Group consecutive layers into stages; a stage starts where the feature map shrinks."""
    x = torch.zeros(1, 3, size, size)
    stages, current, resolution = [], [], None
    with torch.no_grad():
        for layer in layers:
            x = layer(x)
            if current and x.shape[-1] != resolution:
                stages.append(current)
                current = []
            current.append(layer)
            resolution = x.shape[-1]
    stages.append(current)
    return [(f"stage{i + 1}", stage) for i, stage in enumerate(stages)]


def conv_base_blocks(name, model, size):
    """[(block name, [modules])] bottom to top; together they are the conv base."""
    if all(hasattr(model, a) for a in ("conv1", "bn1", "relu", "maxpool", "layer4")):
        return [("stem", [model.conv1, model.bn1, model.relu, model.maxpool])] + \
               [(f"layer{i}", [getattr(model, f"layer{i}")]) for i in range(1, 5)]
    if hasattr(model, "stem") and hasattr(model, "trunk_output"):
        return [("stem", [model.stem])] + [(n, [m]) for n, m in model.trunk_output.named_children()]
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise SystemExit(f"don't know where the conv base of '{name}' ends; "
                         "add a case to conv_base_blocks() in this script")
    if name.startswith("vgg"):
        blocks, current = [], []
        for layer in features:
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):
                blocks.append((f"block{len(blocks) + 1}", current))
                current = []
        return blocks
    if name.startswith("densenet"):
        f = features
        return [("stem", [f.conv0, f.norm0, f.relu0, f.pool0]),
                ("block1", [f.denseblock1, f.transition1]),
                ("block2", [f.denseblock2, f.transition2]),
                ("block3", [f.denseblock3, f.transition3]),
                # DenseNet.forward applies a ReLU after `features`; keep it in the base.
                ("block4", [f.denseblock4, f.norm5, nn.ReLU()])]
    return split_by_resolution(list(features), size)


class TapBlocks(nn.Module):
    """Runs the conv base and also returns each block's output.

    Exporting the block outputs as extra graph outputs names those tensors
    after the blocks ("layer3", ...); the extra outputs are removed again
    afterwards, leaving predictable tensor names instead of guessed ones.
    """

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        taps = []
        for block in self.base:
            x = block(x)
            taps.append(x)
        return (x,) + tuple(taps[:-1])


def export(module, path, opset, size, output_names):
    kwargs = dict(
        input_names=["input"],
        output_names=output_names,
        dynamic_axes={n: {0: "N"} for n in ["input"] + output_names},
        opset_version=opset,
        do_constant_folding=True,
    )
    # Classic TorchScript exporter on purpose: it honours output_names for the
    # tapped tensors. torch >= 2.9 defaults to dynamo=True; torch < 2.5 has no
    # `dynamo` argument and is classic only.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(module, (torch.randn(1, 3, size, size),), path, **kwargs)


def main():
    args = parse_args()
    name = args.model.lower()
    out = os.path.abspath(args.output or f"{name}-torchvision.onnx")
    os.makedirs(os.path.dirname(out), exist_ok=True)

    weights = None
    if args.weights.lower() != "none":
        weights = models.get_model_weights(name).verify(args.weights)
    model = models.get_model(name, weights=weights).eval()

    if weights is not None:
        preset = weights.transforms()
        size, mean, std = preset.crop_size[0], list(preset.mean), list(preset.std)
    else:
        size, mean, std = 224, IMAGENET_MEAN, IMAGENET_STD
    size = args.size or size

    blocks = conv_base_blocks(name, model, size)
    base = nn.Sequential(OrderedDict((n, nn.Sequential(*mods)) for n, mods in blocks)).eval()
    block_names = [n for n, _ in blocks]
    output_names = ["features"] + block_names[:-1]
    # eval() on the wrapper too: the exporter restores the wrapper's mode
    # afterwards, recursively, which would put BatchNorm back into training mode.
    export(TapBlocks(base).eval(), out, args.opset, size, output_names)

    m = onnx.load(out)
    # Keep only the conv-base output; the tapped tensors stay in the graph under their names.
    for o in [o for o in m.graph.output if o.name != "features"]:
        m.graph.output.remove(o)
    name_batch_dim(m)
    onnx.checker.check_model(m)
    onnx.save(m, out)

    produced = {t for node in m.graph.node for t in node.output}
    block_outputs = block_names[:-1] + ["features"]
    missing = [t for t in block_outputs if t not in produced]
    if missing:
        raise SystemExit(f"block tensors not found in the exported graph: {missing}")

    input_name = graph_inputs(m)[0].name
    spec = {
        "name": f"{name}-torchvision",
        "input": input_name,
        "output": "features",
        "layout": "NCHW",
        "width": size,
        "height": size,
        "channelOrder": "RGB",
        "scale": 1 / 255,
        "mean": mean,
        "std": std,
        "pooling": "avg",
        "blocks": [{"name": n, "output": t} for n, t in zip(block_names, block_outputs)],
    }
    spec_path = write_spec(out, spec)

    x = torch.from_numpy(np.random.RandomState(0).randn(2, 3, size, size).astype(np.float32))
    got = run_onnxruntime(m, {input_name: x.numpy()}, block_outputs)
    if got is not None:
        print("ONNX Runtime vs PyTorch (batch of 2):")
        with torch.no_grad():
            h = x
            for n, block, t in zip(block_names, base, block_outputs):
                h = block(h)
                compare(n, got[t], h.numpy())

    describe(out, spec_path, spec, tensor_shapes(m))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export the torchvision VGG16 conv base (ImageNet weights) to ONNX for MlNetTransfer.

Writes vgg16-torchvision.onnx (input `input` [N,3,224,224] NCHW, output
`features` [N,512,7,7] NCHW) and, beside it, the preprocessing spec
vgg16-torchvision.onnx.json.

    pip install torch torchvision onnx onnxruntime   # versions: see README.md
    python export_vgg16_torchvision.py --output vgg16-torchvision.onnx
"""

import argparse
import inspect
import os

import numpy as np
import onnx
import torch
from torchvision.models import VGG16_Weights, vgg16

from _common import (compare, describe, graph_inputs, name_batch_dim, run_onnxruntime, tensor_shapes,
                     write_spec)

# features[i] for the five MaxPool2d layers that close block1..block5.
POOL_INDICES = [4, 9, 16, 23, 30]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="vgg16-torchvision.onnx", help="ONNX file to write (spec goes to <output>.json)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--random-weights", action="store_true",
                   help="skip the ImageNet weights (no download); only to test the export pipeline")
    return p.parse_args()


def export(model, path, opset):
    kwargs = dict(
        input_names=["input"],
        output_names=["features"],
        dynamic_axes={"input": {0: "N"}, "features": {0: "N"}},
        opset_version=opset,
        do_constant_folding=True,
    )
    # The classic TorchScript exporter keeps our input/output names and gives
    # intermediate tensors predictable names; torch >= 2.9 defaults to the
    # dynamo exporter, so ask for the classic one explicitly where the
    # parameter exists (torch < 2.5 has no `dynamo` argument and is classic only).
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    dummy = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, (dummy,), path, **kwargs)


def main():
    args = parse_args()
    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)

    weights = None if args.random_weights else VGG16_Weights.IMAGENET1K_V1
    # Conv base only: the avgpool and classifier are replaced by MlNetTransfer's own head.
    model = vgg16(weights=weights).features.eval()
    export(model, out, args.opset)

    m = onnx.load(out)
    name_batch_dim(m)
    onnx.checker.check_model(m)
    onnx.save(m, out)

    # Graph order is topological, so the MaxPool nodes come out block1..block5.
    pools = [n for n in m.graph.node if n.op_type == "MaxPool"]
    if len(pools) != len(POOL_INDICES):
        raise SystemExit(f"expected {len(POOL_INDICES)} MaxPool nodes, found {len(pools)}")
    block_outputs = [n.output[0] for n in pools]
    input_name, output_name = graph_inputs(m)[0].name, m.graph.output[0].name
    if block_outputs[-1] != output_name:
        raise SystemExit(f"last MaxPool output {block_outputs[-1]!r} is not the graph output {output_name!r}")

    spec = {
        "name": "vgg16-torchvision",
        "input": input_name,
        "output": output_name,
        "layout": "NCHW",
        "width": 224,
        "height": 224,
        "channelOrder": "RGB",
        "scale": 1 / 255,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "pooling": "avg",
        "blocks": [{"name": f"block{k + 1}", "output": t} for k, t in enumerate(block_outputs)],
    }
    spec_path = write_spec(out, spec)

    # Same random batch through PyTorch and ONNX Runtime, final output and every block.
    x = torch.from_numpy(np.random.RandomState(0).randn(2, 3, 224, 224).astype(np.float32))
    got = run_onnxruntime(m, {input_name: x.numpy()}, block_outputs)
    if got is not None:
        print("ONNX Runtime vs PyTorch (batch of 2):")
        with torch.no_grad():
            for k, (idx, t) in enumerate(zip(POOL_INDICES, block_outputs)):
                compare(f"block{k + 1}", got[t], model[: idx + 1](x).numpy())

    describe(out, spec_path, spec, tensor_shapes(m))


if __name__ == "__main__":
    main()

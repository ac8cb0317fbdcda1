#!/usr/bin/env python3
"""Export the Keras VGG16 conv base (ImageNet weights) to ONNX for MlNetTransfer.

Writes vgg16-keras.onnx (NHWC float input [N,224,224,3], output block5_pool
[N,7,7,512]) and, beside it, the preprocessing spec vgg16-keras.onnx.json.
Keras' VGG16 expects "caffe" preprocessing: BGR, per-channel mean
subtracted, no scaling.

    pip install tensorflow tf2onnx onnx onnxruntime   # versions: see README.md
    python export_vgg16_keras.py --output vgg16-keras.onnx
"""

import argparse
import os

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx.convert

from _common import (compare, describe, follow_to_graph_output, graph_inputs, name_batch_dim,
                     run_onnxruntime, tensor_shapes, write_spec)

BLOCKS = [f"block{k}" for k in range(1, 6)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="vgg16-keras.onnx", help="ONNX file to write (spec goes to <output>.json)")
    p.add_argument("--opset", type=int, default=15, help="ONNX opset, 13 or later (default 15)")
    p.add_argument("--random-weights", action="store_true",
                   help="skip the ImageNet weights (no download); only to test the export pipeline")
    args = p.parse_args()
    if args.opset < 13:
        p.error("--opset must be 13 or later")
    return args


def convert(model, opset):
    # None as the first dimension makes the batch dynamic in the ONNX graph.
    signature = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name=model.layers[0].name),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as e:  # tf2onnx <= 1.16 breaks in several ways on Keras 3
        print(f"tf2onnx.convert.from_keras failed ({type(e).__name__}: {e});\n"
              "retrying through a tf.function (the Keras 3 route)")
        fn = tf.function(lambda x: model(x, training=False))
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=signature, opset=opset)
    return proto


def find_block_outputs(m):
    """Tensor where each blockK ends: the output of its blockK_pool MaxPool node.

    tf2onnx keeps the TensorFlow op name ("vgg16/block3_pool/MaxPool", with a
    prefix that varies by version) on the MaxPool node; fall back to graph
    order, which is topological, if the names were lost.
    """
    pools = [n for n in m.graph.node if n.op_type == "MaxPool"]
    outputs = []
    for k, block in enumerate(BLOCKS):
        named = [n for n in pools if f"{block}_pool" in n.name]
        if len(named) == 1:
            node = named[0]
        elif len(pools) == len(BLOCKS):
            node = pools[k]
        else:
            raise SystemExit(f"cannot tell which MaxPool ends {block}: "
                             f"{[n.name for n in pools]}")
        # The last pool is followed by the Transpose back to NHWC; end the
        # block at the real conv-base output instead.
        outputs.append(follow_to_graph_output(m, node.output[0]))
    return outputs


def main():
    args = parse_args()
    out = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)

    # Full float32 for the comparison below: TensorFlow uses TF32 on recent NVIDIA GPUs by default.
    tf.config.experimental.enable_tensor_float_32_execution(False)
    model = tf.keras.applications.VGG16(include_top=False, weights=None if args.random_weights else "imagenet",
                                        input_shape=(224, 224, 3))
    m = convert(model, args.opset)
    name_batch_dim(m)
    onnx.checker.check_model(m)
    onnx.save(m, out)

    input_name = graph_inputs(m)[0].name
    output_name = m.graph.output[0].name
    block_outputs = find_block_outputs(m)
    if block_outputs[-1] != output_name:
        print(f"warning: block5 ends at {block_outputs[-1]!r}, not at the graph output {output_name!r}")

    spec = {
        "name": "vgg16-keras",
        "input": input_name,
        "output": output_name,
        "layout": "NHWC",
        "width": 224,
        "height": 224,
        "channelOrder": "BGR",
        "scale": 1.0,
        "mean": [103.939, 116.779, 123.68],
        "std": [1.0, 1.0, 1.0],
        "pooling": "avg",
        "blocks": [{"name": b, "output": t} for b, t in zip(BLOCKS, block_outputs)],
    }
    spec_path = write_spec(out, spec)

    # Inputs in the range caffe preprocessing produces (pixel - mean).
    x = np.random.RandomState(0).uniform(-124.0, 152.0, (2, 224, 224, 3)).astype(np.float32)
    got = run_onnxruntime(m, {input_name: x}, block_outputs)
    if got is not None:
        print("ONNX Runtime vs Keras (batch of 2; Keras tensors are NHWC):")
        probe = tf.keras.Model(model.inputs, [model.get_layer(f"{b}_pool").output for b in BLOCKS])
        refs = probe(x, training=False)
        for b, t, ref in zip(BLOCKS, block_outputs, refs):
            compare(b, got[t], np.asarray(ref), nhwc_reference=True)

    describe(out, spec_path, spec, tensor_shapes(m))


if __name__ == "__main__":
    main()

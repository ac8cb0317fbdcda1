"""Helpers shared by the export scripts in this folder.

Only needs `onnx` and `numpy`; `onnxruntime` is optional and used for the
post-export comparison against the source framework.
"""

import json
import os

import numpy as np
import onnx
from onnx import helper, shape_inference

BATCH_DIM = "N"


def graph_inputs(model):
    """Real inputs: some exporters also list initializers (weights) as inputs."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def name_batch_dim(model):
    """Give dim 0 of every graph input/output the symbolic name "N".

    tf2onnx names an unknown batch dimension "unk__123"; a stable name reads
    better and tells the tool at a glance that the batch is dynamic. A fixed
    batch size (dim_value) is an export mistake, so fail loudly on it.
    """
    for vi in list(graph_inputs(model)) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            continue
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            raise SystemExit(f"'{vi.name}' has a fixed batch size {dims[0].dim_value}; "
                             "the export must leave the batch dimension dynamic")
        dims[0].dim_param = BATCH_DIM


def tensor_shapes(model):
    """name -> shape (ints, or the symbolic name for dynamic dims) for every tensor ONNX can infer."""
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                               for d in tt.shape.dim]
    return shapes


def follow_to_graph_output(model, tensor):
    """If `tensor` only flows through layout-only nodes into a graph output, return that output's name.

    tf2onnx runs Keras' NHWC graph internally in NCHW and puts a Transpose
    after the last MaxPool; the last block should end at the real (NHWC)
    conv-base output, not at the NCHW tensor just before it.
    """
    outputs = {o.name for o in model.graph.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    current = tensor
    while current not in outputs:
        users = consumers.get(current, [])
        if len(users) != 1 or users[0].op_type not in ("Transpose", "Identity"):
            return tensor
        current = users[0].output[0]
    return current


def with_extra_outputs(model, names):
    """Copy of `model` that also returns the given intermediate tensors.

    ONNX Runtime can only fetch graph outputs, so block tensors have to be
    promoted to outputs before they can be compared.
    """
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    present = {o.name for o in extended.graph.output}
    for name in names:
        if name not in present:
            extended.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            present.add(name)
    return extended


def run_onnxruntime(model, feeds, names):
    """Run `model` on CPU and return the requested tensors, or None when onnxruntime is missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: skipping the numerical comparison "
              "(pip install onnxruntime to enable it)")
        return None
    session = ort.InferenceSession(with_extra_outputs(model, names).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, feeds)))


def compare(label, onnx_value, reference, nhwc_reference=False):
    """Print how far the ONNX tensor is from the framework's; returns the layout the ONNX tensor is in.

    Keras tensors are NHWC; after tf2onnx the intermediate tensors are often
    NCHW, so an NCHW ONNX tensor is transposed before comparing.
    """
    layout = "NHWC" if nhwc_reference else "NCHW"
    value = onnx_value
    if nhwc_reference and value.shape != reference.shape and value.ndim == 4 \
            and value.transpose(0, 2, 3, 1).shape == reference.shape:
        value, layout = value.transpose(0, 2, 3, 1), "NCHW"
    if value.shape != reference.shape:
        print(f"  {label}: SHAPE MISMATCH onnx {list(onnx_value.shape)} vs framework {list(reference.shape)}")
        return None
    diff = float(np.max(np.abs(value - reference)))
    scale = float(np.max(np.abs(reference))) or 1.0
    verdict = "ok" if diff <= 1e-3 * scale + 1e-4 else "DIFFERS"
    print(f"  {label}: shape {list(onnx_value.shape)} ({layout}), max |diff| {diff:.3g} "
          f"(max |value| {scale:.3g}) {verdict}")
    return layout


def write_spec(onnx_path, spec):
    """Write the preprocessing spec beside the model, as <model>.onnx.json."""
    # Hand-rolled layout: one key per line, one block per line, lists inline.
    fields = []
    for key, value in spec.items():
        if key == "blocks":
            rows = ",\n".join("    " + json.dumps(b) for b in value)
            text = "[\n" + rows + "\n  ]"
        else:
            text = json.dumps(value)
        fields.append(f"  {json.dumps(key)}: {text}")
    path = onnx_path + ".json"
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(fields) + "\n}\n")
    with open(path, encoding="utf-8") as f:
        json.load(f)  # must stay valid JSON
    return path


def describe(onnx_path, spec_path, spec, shapes):
    """Final summary printed by every export script."""
    size = os.path.getsize(onnx_path)
    print(f"\nwrote {onnx_path} ({size / 1e6:.1f} MB)")
    print(f"wrote {spec_path}")
    print(f"  input  {spec['input']} {shapes.get(spec['input'])}")
    print(f"  output {spec['output']} {shapes.get(spec['output'])}")
    for block in spec.get("blocks", []):
        print(f"  {block['name']:<7} ends at {block['output']} {shapes.get(block['output'])}")

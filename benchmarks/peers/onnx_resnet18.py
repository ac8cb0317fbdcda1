"""The ResNet18 of Microsoft.ML.DnnImageFeaturizer.ResNet18 (a CNTK 2.6 export) as a torch.nn.Module.

It is not torchvision's resnet18 (stages of [2, 2, 2, 3] basic blocks, CNTK's lopsided pads), so the ONNX graph is
interpreted node by node from its initializers: Conv (asymmetric pads through F.pad), BatchNormalization, Relu, Add,
MaxPool, AveragePool / GlobalAveragePool, and the few shape ops such a graph may hold (Reshape, Flatten, Sub, Mul, ...).

Names are the ones MlNetTransfer uses (src/MlNetTransfer/Backbones/ConvBaseRegistry.cs):
  input  Input247                 [1, 3, 224, 224]  BGR minus the 224x224 mean image of ResNetPreprocess.onnx
  stage3 ReLU347_Output_0         [256, 14, 14]     the freeze boundary of `--unfreeze stage4`
  stage4 ReLU393_Output_0         [512, 7, 7]
  output Pooling395_Output_0      [512, 1, 1]       the pooled feature vector our featurizer flattens to 512 floats

The preprocessing is ours (PreprocessingSpec of the "resnet18" preset): planar RGB floats in 0..255 at 224x224
(ML.NET's ExtractPixels default after an isotropic resize with a centre crop), RGB -> BGR, minus the mean image,
no scaling. `Preprocess` does exactly that, with the mean image read from ResNetPreprocess.onnx.
"""
from __future__ import annotations

import glob
import os
import re

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

INPUT = "Input247"
STAGE3 = "ReLU347_Output_0"
STAGE4 = "ReLU393_Output_0"
POOLED = "Pooling395_Output_0"
MEAN_IMAGE = "MeanImage"


def find_model(name: str) -> str:
    """ResNet18.onnx or ResNetPreprocess.onnx: $MLNT_RESNET18_DIR, else the NuGet cache, else a built bin folder."""
    roots = [os.environ.get("MLNT_RESNET18_DIR", ""),
             os.path.expanduser("~/.nuget/packages/microsoft.ml.dnnimagefeaturizer.resnet18"),
             os.environ.get("NUGET_PACKAGES", "")]
    for root in roots:
        if root and os.path.isdir(root):
            hits = sorted(glob.glob(os.path.join(root, "**", name), recursive=True))
            if hits:
                return hits[-1]
    for hit in glob.glob(os.path.join("/tmp/peer-bin", "**", name), recursive=True):
        return hit
    raise FileNotFoundError(f"{name} not found: set MLNT_RESNET18_DIR or restore Microsoft.ML.DnnImageFeaturizer.ResNet18")


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _torch_pad(pads, rank=2):
    """ONNX pads [x1_begin, x2_begin, x1_end, x2_end] -> F.pad's (x2_begin, x2_end, x1_begin, x1_end)."""
    pads = list(pads) if pads else [0] * (2 * rank)
    begins, ends = pads[:rank], pads[rank:]
    out = []
    for b, e in zip(reversed(begins), reversed(ends)):
        out += [b, e]
    return out, begins == ends, begins


class OnnxSubgraph(nn.Module):
    """The nodes of an ONNX graph that lie between `inputs` and `output`, run in graph order.

    Conv weights and BatchNormalization scale/bias are nn.Parameters (frozen by default: requires_grad False);
    BN running statistics are buffers. BatchNorm always uses its running statistics (inference mode, as our
    fine-tuning does by default) unless `bn_train` is set and the module is in training mode.
    """

    def __init__(self, model: onnx.ModelProto, inputs: list[str], output: str, bn_train: bool = False):
        super().__init__()
        graph = model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        producers = {o: n for n in graph.node for o in n.output}
        # The nodes needed for `output`, stopping at `inputs`.
        needed, stack = set(), [output]
        while stack:
            t = stack.pop()
            if t in inputs or t in inits or t in needed:
                continue
            if t not in producers:
                raise ValueError(f"tensor {t} is neither produced, an initializer nor an input")
            needed.add(t)
            stack.extend(i for i in producers[t].input if i)
        self.nodes = [n for n in graph.node if any(o in needed for o in n.output)]
        self.inputs, self.output, self.bn_train = list(inputs), output, bn_train
        self.params = nn.ParameterDict()
        self.consts: dict[str, str] = {}
        self.ops = []  # (op_type, input names, output name, attrs)
        for n in self.nodes:
            a = _attrs(n)
            for i in n.input:
                if i in inits and _safe(i) not in self.params and _safe(i) not in self.consts:
                    arr = np.array(inits[i], dtype=np.float32) if inits[i].dtype.kind == "f" else inits[i]
                    tensor = torch.from_numpy(np.ascontiguousarray(arr))
                    if n.op_type == "BatchNormalization" and list(n.input).index(i) >= 3 or tensor.dtype != torch.float32 \
                            or n.op_type in ("Reshape",):
                        self.register_buffer("c_" + _safe(i), tensor)
                        self.consts[_safe(i)] = "c_" + _safe(i)
                    else:
                        self.params[_safe(i)] = nn.Parameter(tensor, requires_grad=False)
            if n.op_type not in _OPS:
                raise NotImplementedError(f"ONNX op {n.op_type} ({n.name}) is not interpreted")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise NotImplementedError(f"{n.name}: auto_pad {a['auto_pad']}")
            self.ops.append((n.op_type, list(n.input), n.output[0], a))

    def _get(self, name, env):
        if name in env:
            return env[name]
        s = _safe(name)
        if s in self.params:
            return self.params[s]
        return getattr(self, self.consts[s])

    def forward(self, *xs, outputs: list[str] | None = None):
        env = dict(zip(self.inputs, xs))
        for op, ins, out, a in self.ops:
            env[out] = _OPS[op](self, [self._get(i, env) if i else None for i in ins], a)
        if outputs:
            return [env[o] for o in outputs]
        return env[self.output]


def _conv(m, x, a):
    inp, w = x[0], x[1]
    b = x[2] if len(x) > 2 else None
    tpad, symmetric, begins = _torch_pad(a.get("pads"))
    if not symmetric:
        inp = F.pad(inp, tpad)
        begins = [0, 0]
    return F.conv2d(inp, w, b, stride=a.get("strides", [1, 1]), padding=begins,
                    dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))


def _bn(m, x, a):
    inp, scale, bias, mean, var = x
    training = m.bn_train and m.training
    return F.batch_norm(inp, mean, var, scale, bias, training=training, momentum=1 - a.get("momentum", 0.9),
                        eps=a.get("epsilon", 1e-5))


def _maxpool(m, x, a):
    inp = x[0]
    tpad, symmetric, begins = _torch_pad(a.get("pads"))
    if not symmetric:
        inp = F.pad(inp, tpad, value=float("-inf"))
        begins = [0, 0]
    k = a["kernel_shape"]
    return F.max_pool2d(inp, k, stride=a.get("strides", k), padding=begins, ceil_mode=bool(a.get("ceil_mode", 0)))


def _avgpool(m, x, a):
    inp = x[0]
    tpad, symmetric, begins = _torch_pad(a.get("pads"))
    include = bool(a.get("count_include_pad", 0))
    k = a["kernel_shape"]
    if any(tpad):
        if not include:
            raise NotImplementedError("padded AveragePool without count_include_pad")
        inp = F.pad(inp, tpad)
    return F.avg_pool2d(inp, k, stride=a.get("strides", k), padding=0, ceil_mode=bool(a.get("ceil_mode", 0)))


def _reshape(m, x, a):
    shape = [int(s) for s in (x[1].tolist() if x[1] is not None else a["shape"])]
    shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x[0].reshape(shape)


_OPS = {
    "Conv": _conv,
    "BatchNormalization": _bn,
    "Relu": lambda m, x, a: F.relu(x[0]),
    "Add": lambda m, x, a: x[0] + x[1],
    "Sub": lambda m, x, a: x[0] - x[1],
    "Mul": lambda m, x, a: x[0] * x[1],
    "Div": lambda m, x, a: x[0] / x[1],
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": lambda m, x, a: x[0].mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda m, x, a: torch.flatten(x[0], a.get("axis", 1)),
    "Reshape": _reshape,
    "Identity": lambda m, x, a: x[0],
    "Dropout": lambda m, x, a: x[0],
}


class Preprocess(nn.Module):
    """Planar RGB 0..255 [N, 3, 224, 224] -> the base's input: BGR minus the mean image (ResNetPreprocess.onnx)."""

    def __init__(self, prep_path: str | None = None):
        super().__init__()
        prep = onnx.load(prep_path or find_model("ResNetPreprocess.onnx"))
        mean = {t.name: numpy_helper.to_array(t) for t in prep.graph.initializer}[MEAN_IMAGE]
        self.register_buffer("mean_image", torch.from_numpy(np.array(mean, dtype=np.float32)).reshape(1, 3, 224, 224))

    def forward(self, x):
        return x.flip(1) - self.mean_image


class ResNet18Onnx(nn.Module):
    """Pixels (planar RGB 0..255) -> the 512 pooled features our featurizer takes (Pooling395_Output_0, flattened)."""

    def __init__(self, model_path: str | None = None, prep_path: str | None = None):
        super().__init__()
        model = onnx.load(model_path or find_model("ResNet18.onnx"))
        self.prep = Preprocess(prep_path)
        self.body = OnnxSubgraph(model, [INPUT], POOLED)

    def forward(self, pixels):
        return torch.flatten(self.body(self.prep(pixels)), 1)


def split(model_path: str | None = None, prep_path: str | None = None, bn_train: bool = False):
    """(frozen prefix: pixels -> stage3 [N,256,14,14], stage4: stage3 -> pooled features [N,512]) with the ONNX weights.

    The prefix's parameters stay frozen; stage4's are made trainable (requires_grad True). Its BatchNorm runs in
    inference mode unless bn_train (then it updates its statistics in train(), as torchvision's tutorial does).
    """
    model = onnx.load(model_path or find_model("ResNet18.onnx"))
    prep = Preprocess(prep_path)
    body = OnnxSubgraph(model, [INPUT], STAGE3)
    prefix = nn.Sequential(prep, body).eval()
    stage4 = OnnxSubgraph(model, [STAGE3], POOLED, bn_train=bn_train)
    for p in stage4.params.values():
        p.requires_grad_(True)
    return prefix, _Flatten(stage4)


class _Flatten(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.flatten(self.inner(x), 1)


if __name__ == "__main__":
    torch.set_num_threads(2)
    m = ResNet18Onnx().eval()
    ops = {}
    for op, *_ in m.body.ops:
        ops[op] = ops.get(op, 0) + 1
    print("nodes", len(m.body.ops), ops)
    prefix, stage4 = split()
    print("prefix nodes", len(prefix[1].ops), "stage4 nodes", len(stage4.inner.ops),
          "stage4 trainable params", sum(p.numel() for p in stage4.parameters() if p.requires_grad))
    with torch.no_grad():
        x = torch.rand(2, 3, 224, 224) * 255
        f = m(x)
        g = stage4(prefix(x))
    print("features", tuple(f.shape), "split vs whole max abs diff", float((f - g).abs().max()))

"""Parity of the torch ResNet18 (onnx_resnet18.py) with ONNX Runtime, on the same preprocessed tensors.

/usr/bin/python3 has no onnxruntime module on Debian 12, so the reference runs in .NET: ort-features/ (Microsoft.ML.
OnnxRuntime, the engine our featurizer uses) is built once and runs ResNetPreprocess.onnx + ResNet18.onnx on the
same float tensors (planar RGB 0..255), exactly the two graphs ML.NET's DnnFeaturizeImage chains. If onnxruntime
does import in Python, that is used instead.

Usage: check_parity.py [data folder] [--images N]     (images: the first N of the folder, resized as ours; else random)
Prints max abs diff and max relative diff (to the largest feature) of the 512 pooled features and of stage3.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_resnet18 as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def ort_features(pixels: np.ndarray, output: str) -> np.ndarray:
    prep, base = R.find_model("ResNetPreprocess.onnx"), R.find_model("ResNet18.onnx")
    model = R.onnx.load(base)
    if output not in [o.name for o in model.graph.output]:
        # An inner tensor (stage3): a copy of the graph with it as its output, as our FeaturizerGraphBuilder cuts it.
        del model.graph.output[:]
        model.graph.output.append(R.onnx.helper.make_tensor_value_info(output, R.onnx.TensorProto.FLOAT, None))
        base = os.path.join(tempfile.gettempdir(), f"peer-parity-{output}.onnx")
        R.onnx.save(model, base)
    try:
        import onnxruntime as ort  # noqa: F401
        o = ort.SessionOptions()
        o.intra_op_num_threads = 2
        sp = ort.InferenceSession(prep, o)
        sm = ort.InferenceSession(base, o)
        outs = []
        for x in pixels:
            p = sp.run(None, {sp.get_inputs()[0].name: x[None]})[0]
            outs.append(sm.run([output], {sm.get_inputs()[0].name: p})[0])
        return np.concatenate(outs).reshape(len(pixels), -1)
    except ImportError:
        pass
    out_dir = os.environ.get("PEER_ORT_BIN", "/tmp/peer-ort")
    dll = os.path.join(out_dir, "OrtFeatures.dll")
    if not os.path.exists(dll):
        subprocess.run(["dotnet", "build", os.path.join(HERE, "ort-features"), "-c", "Release", "-o", out_dir,
                        "-nologo", "-v", "q"], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="peer-parity-") as tmp:
        inp, out = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.f32")
        np.ascontiguousarray(pixels, dtype="<f4").tofile(inp)
        subprocess.run(["dotnet", dll, prep, base, output, inp, str(len(pixels)), out], check=True)
        return np.fromfile(out, dtype="<f4").reshape(len(pixels), -1)


def load_pixels(folder: str | None, n: int) -> np.ndarray:
    if not folder:
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n, 3, 224, 224, generator=g) * 255).numpy()
    from pytorch_tutorial import plain_transform, image_folder
    ds = image_folder(folder, plain_transform())
    return np.stack([ds[i][0].numpy() for i in range(min(n, len(ds)))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", help="an image folder (class folders); default: random tensors")
    ap.add_argument("--images", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pixels = load_pixels(args.data, args.images)
    whole = R.ResNet18Onnx().eval()
    prefix, _ = R.split()
    with torch.no_grad():
        x = torch.from_numpy(pixels)
        ours = whole(x).numpy()
        stage3 = prefix(x).reshape(len(pixels), -1).numpy()
    result = {"images": len(pixels), "source": args.data or "random 0..255"}
    for name, mine, tensor in [("features", ours, R.POOLED), ("stage3", stage3, R.STAGE3)]:
        ref = ort_features(pixels, tensor)
        diff = np.abs(mine - ref)
        result[name] = {"max_abs_diff": float(diff.max()), "max_rel_diff": float(diff.max() / np.abs(ref).max()),
                        "max_abs_ref": float(np.abs(ref).max()),
                        "cosine_min": float(min(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(mine, ref)))}
    print(json.dumps(result))
    ok = result["features"]["max_rel_diff"] <= 1e-4
    print("parity", "OK" if ok else "FAILED", f"(features max abs diff {result['features']['max_abs_diff']:.3g},"
          f" relative {result['features']['max_rel_diff']:.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

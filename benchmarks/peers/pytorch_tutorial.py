"""The PyTorch transfer-learning tutorial's two ways, on the same net, images and preprocessing as MlNetTransfer.

  (a) --mode feature-extraction: featurize train/ and val/ with a DataLoader (plain views), fit a multinomial
      logistic regression head (torch LBFGS, L2) on the 512 pooled features, report val accuracy.
  (b) --mode fine-tune: the frozen prefix (through stage3) runs on every step, as in the tutorial; stage4 + a new
      linear head train with SGD lr 0.001 momentum 0.9 on RandomResizedCrop(224) + RandomHorizontalFlip views.
      First --head-epochs with stage4 frozen, then --epochs with stage4 unfrozen (our FineTuningOptions defaults: 5 + 10,
      batch 32).

The net is the ResNet18 ONNX of Microsoft.ML.DnnImageFeaturizer.ResNet18, interpreted into torch (onnx_resnet18.py).
Preprocessing as ours (src/MlNetTransfer/Featurization/ImagePixelsPipeline.cs + the resnet18 preset): isotropic resize
of the shorter side to 224 and a centre crop, planar RGB 0..255 floats, then RGB -> BGR minus the mean image. (Ours
resizes with SkiaSharp inside ML.NET, this with PIL's bilinear: pixels differ slightly, the transformation is the same.)

Data: a folder with train/<class>/* and val/<class>/* (e.g. hymenoptera_data). ImageFolder skips files that are not of
an image extension (train/ants/imageNotFound.gif).

The last line of output is one JSON object with every figure, for a driver to parse.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_resnet18 as R  # noqa: E402


def _to_float(t):
    return t.float()


def plain_transform(size: int = 224):
    """Ours for plain views: shorter side to 224, centre crop, planar RGB floats 0..255 (no scaling)."""
    return transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.PILToTensor(),
                               transforms.Lambda(_to_float)])


def train_transform(size: int = 224):
    """The tutorial's training augmentation, in our pixel range (0..255; normalization is inside the model)."""
    return transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                               transforms.PILToTensor(), transforms.Lambda(_to_float)])


def _rgb_loader(path):
    from PIL import Image
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def image_folder(root: str, transform):
    return datasets.ImageFolder(root, transform=transform, loader=_rgb_loader)


def peak_rss_mib() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mib": round(own, 1), "peak_rss_children_mib": round(children, 1)}


def featurize(model, ds, batch, workers):
    loader = DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers)
    feats, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            feats.append(model(x))
            labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def fit_logistic(x, y, classes, l2, max_iter):
    """Multinomial logistic regression by L-BFGS on standardized features, loss = mean CE + l2/2 |W|^2."""
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-6)
    xs = (x - mean) / std
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-9,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda f: ((f - mean) / std) @ w + b


def feature_extraction(args):
    t0 = time.perf_counter()
    model = R.ResNet18Onnx().eval()
    train = image_folder(os.path.join(args.data, "train"), plain_transform())
    val = image_folder(os.path.join(args.data, "val"), plain_transform())
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    xtr, ytr = featurize(model, train, args.batch_size, args.workers)
    xva, yva = featurize(model, val, args.batch_size, args.workers)
    t_feat = time.perf_counter() - t1
    n = len(train) + len(val)
    t2 = time.perf_counter()
    head = fit_logistic(xtr, ytr, len(train.classes), args.l2, args.max_iter)
    t_head = time.perf_counter() - t2
    acc = float((head(xva).argmax(1) == yva).float().mean())
    wall = time.perf_counter() - t0
    print(f"featurized {n} images ({len(train)} train, {len(val)} val) in {t_feat:.1f} s ({n / t_feat:.1f} img/s),"
          f" workers {args.workers}; head {t_head:.2f} s; val accuracy {acc:.4f}; wall {wall:.1f} s")
    return {"mode": "feature-extraction", "workers": args.workers, "threads": args.threads, "images": n,
            "train_images": len(train), "val_images": len(val), "model_load_s": round(t_load, 2),
            "featurize_s": round(t_feat, 2), "featurize_img_per_s": round(n / t_feat, 2), "head_s": round(t_head, 3),
            "val_accuracy": round(acc, 4), "wall_s": round(wall, 2), **peak_rss_mib()}


def evaluate(prefix, stage4, head, loader):
    stage4.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((head(stage4(prefix(x))).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def fine_tune(args):
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    prefix, stage4 = R.split(bn_train=args.train_batchnorm)
    train = image_folder(os.path.join(args.data, "train"), train_transform())
    val = image_folder(os.path.join(args.data, "val"), plain_transform())
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                              persistent_workers=args.workers > 0)
    val_loader = DataLoader(val, batch_size=args.batch_size, shuffle=False, num_workers=args.workers,
                            persistent_workers=args.workers > 0)
    head = nn.Linear(512, len(train.classes))
    criterion = nn.CrossEntropyLoss()
    epochs, best, step = [], 0.0, 0
    for phase, count in (("head", args.head_epochs), ("stage4", args.epochs)):
        if count <= 0:
            continue
        for p in stage4.parameters():
            p.requires_grad_(phase == "stage4")
        params = list(head.parameters()) + (list(stage4.parameters()) if phase == "stage4" else [])
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)  # the tutorial's
        for e in range(count):
            te = time.perf_counter()
            stage4.train(phase == "stage4")
            head.train()
            seen, loss_sum = 0, 0.0
            for x, y in train_loader:
                with torch.no_grad():
                    a = prefix(x)  # the frozen prefix, every step
                    if phase == "head":
                        f = stage4(a)
                if phase == "stage4":
                    f = stage4(a)
                loss = criterion(head(f), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += len(y)
                loss_sum += float(loss) * len(y)
            sched.step()
            t_train = time.perf_counter() - te
            acc = evaluate(prefix, stage4, head, val_loader)
            t_epoch = time.perf_counter() - te
            best = max(best, acc)
            step += 1
            epochs.append({"epoch": step, "phase": phase, "train_s": round(t_train, 2), "epoch_s": round(t_epoch, 2),
                           "train_loss": round(loss_sum / seen, 4), "val_accuracy": round(acc, 4)})
            print(f"epoch {step} ({phase}): train {t_train:.1f} s, with val {t_epoch:.1f} s, loss {loss_sum / seen:.4f},"
                  f" val accuracy {acc:.4f}", flush=True)
    total = time.perf_counter() - t0
    def mean(key, phase=None):
        v = [e[key] for e in epochs if phase is None or e["phase"] == phase]
        return round(sum(v) / len(v), 2) if v else None
    print(f"fine-tuning: {len(epochs)} epochs in {total:.1f} s to the final model; best val accuracy {best:.4f}")
    return {"mode": "fine-tune", "workers": args.workers, "threads": args.threads, "head_epochs": args.head_epochs,
            "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "train_images": len(train),
            "val_images": len(val), "epoch_s_mean": mean("epoch_s"), "epoch_s_mean_head": mean("epoch_s", "head"),
            "epoch_s_mean_stage4": mean("epoch_s", "stage4"), "train_s_mean_stage4": mean("train_s", "stage4"),
            "total_s": round(total, 2), "final_val_accuracy": epochs[-1]["val_accuracy"] if epochs else None,
            "best_val_accuracy": round(best, 4), "per_epoch": epochs, **peak_rss_mib()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="folder with train/<class>/ and val/<class>/")
    ap.add_argument("--mode", choices=["feature-extraction", "fine-tune"], default="feature-extraction")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader num_workers")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-2, help="feature extraction: L2 of the logistic regression")
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--head-epochs", type=int, default=5, help="fine-tune: epochs with stage4 frozen first")
    ap.add_argument("--epochs", type=int, default=10, help="fine-tune: epochs with stage4 unfrozen")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train-batchnorm", action="store_true", help="fine-tune: update stage4's BN statistics")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    result = feature_extraction(args) if args.mode == "feature-extraction" else fine_tune(args)
    result.update({"torch": torch.__version__, "process_wall_s": round(time.perf_counter() - t0, 2)})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

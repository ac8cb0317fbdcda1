#!/usr/bin/env python3
"""Out-of-distribution AUROC of candidate novelty scores on the pooled features of `featurize` shards (run by
novelty.sh with "methods"): a model of data set A scoring the images of data set B against A's reported split.
Needs numpy and scikit-learn (Debian: python3-numpy, python3-sklearn).
   novelty-methods.py <A.shard> <A's reported split: test|val> <B.shard> [<B.shard> ...]"""
import struct, sys
import numpy as np
from sklearn.covariance import ledoit_wolf
from sklearn.metrics import roc_auc_score


def read_string(b, o):
    n = s = 0
    while True:
        c = b[o]; o += 1; n |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            break
    return b[o:o + n].decode(), o + n


def load(path):
    """FeatureShard format 2 (src/MlNetTransfer/Featurization/FeatureShard.cs): {split: (features, labels)}."""
    b = open(path, "rb").read(); o = 12
    for _ in range(3):
        _, o = read_string(b, o)
    rank, = struct.unpack_from("<i", b, o); o += 4
    shape = struct.unpack_from(f"<{rank}i", b, o); o += 4 * rank
    _, _, records = struct.unpack_from("<iii", b, o); o += 12
    length = int(np.prod(shape)); out = {}
    for _ in range(records):
        _, o = read_string(b, o); rel, o = read_string(b, o); label, o = read_string(b, o)
        views, = struct.unpack_from("<i", b, o); o += 4
        for v in range(views):
            _, o = read_string(b, o)
            x = np.frombuffer(b, dtype="<f4", count=length, offset=o); o += 4 * length
            if v == 0:
                out.setdefault(rel.split("/")[0], ([], []))[0].append(x); out[rel.split("/")[0]][1].append(label)
    return {k: (np.array(f, dtype=np.float64), np.array(l)) for k, (f, l) in out.items()}


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mahalanobis(train, labels, queries, shrink):
    classes = np.unique(labels)
    means = np.stack([train[labels == c].mean(0) for c in classes])
    residuals = np.concatenate([train[labels == c] - means[i] for i, c in enumerate(classes)])
    if shrink == "ledoit-wolf":
        covariance, _ = ledoit_wolf(residuals, assume_centered=True)
    else:
        covariance = residuals.T @ residuals / len(residuals)
    precision = np.linalg.pinv(covariance)
    return np.stack([np.einsum("ij,jk,ik->i", queries - m, precision, queries - m) for m in means], 1).min(1)


a = load(sys.argv[1]); split = sys.argv[2]
b = [load(p) for p in sys.argv[3:]]
train, labels = a["train"]
inside = a[split][0]
outside = np.concatenate([f for s in b for f, _ in s.values()])
queries = np.concatenate([inside, outside])
truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
scores = {
    "Mahalanobis, sample covariance": mahalanobis(train, labels, queries, None),
    "cosine to the nearest training image": 1 - (unit(queries) @ unit(train).T).max(1),
    "Mahalanobis, L2-normalised, Ledoit-Wolf (the tool's)": mahalanobis(unit(train), labels, unit(queries), "ledoit-wolf"),
}
for name, s in scores.items():
    print(f"  {name}: AUROC {roc_auc_score(truth, s):.3f} ({len(inside)} inside, {len(outside)} outside)")

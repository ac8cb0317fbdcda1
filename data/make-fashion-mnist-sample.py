#!/usr/bin/env python3
"""Regenerate data/fashion-mnist-sample/ from the Fashion-MNIST idx files.

Usage:
    python3 data/make-fashion-mnist-sample.py [IDX_DIR] [--out OUT_DIR]
        [--train-per-class N] [--test-per-class M] [--val-per-class V]

The committed sample is the default (30 training and 10 test images a class).
A set large enough to compare modes (outside the repository, e.g.
    python3 data/make-fashion-mnist-sample.py --out /tmp/fashion-100 \
        --train-per-class 100 --test-per-class 100
: 1,000 training and 1,000 test images) is made the same way. With
--val-per-class V (default 0: no val/ folder), the V images of each label that
follow its training images in the training idx file go to val/.

IDX_DIR defaults to /usr/share/datasets/fashion-mnist (Debian package
`dataset-fashion-mnist`). The idx files may be gzip'ed (*.gz) or plain.
OUT_DIR defaults to fashion-mnist-sample/ next to this script.

Selection is deterministic: for each label, the first TRAIN_PER_CLASS images
of that label in the training idx file and the first TEST_PER_CLASS images of
that label in the test (t10k) idx file, in file order. Each image is written
as a 28x28 8-bit grayscale PNG, byte-for-byte from the idx pixels, named after
its zero-padded index in the source idx file (e.g. 00042.png). The PNGs carry
no timestamps or other metadata, so reruns give byte-identical files.

Standard library only.
"""

import argparse
import gzip
import os
import struct
import sys
import zlib

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "fashion-mnist-sample")

# Fashion-MNIST label order 0..9.
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]

TRAIN_PER_CLASS = 30
TEST_PER_CLASS = 10



def open_idx(idx_dir, name):
    """Open an idx file, preferring the gzip'ed form."""
    gz = os.path.join(idx_dir, name + ".gz")
    if os.path.exists(gz):
        return gzip.open(gz, "rb")
    plain = os.path.join(idx_dir, name)
    if os.path.exists(plain):
        return open(plain, "rb")
    sys.exit("error: neither %s nor %s exists" % (gz, plain))


def read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        sys.exit("error: unexpected end of file reading %s" % what)
    return data


def read_labels(idx_dir, prefix):
    name = prefix + "-labels-idx1-ubyte"
    with open_idx(idx_dir, name) as f:
        magic, count = struct.unpack(">II", read_exact(f, 8, name))
        if magic != 0x00000801:
            sys.exit("error: %s: bad magic 0x%08x" % (name, magic))
        labels = read_exact(f, count, name)
    for lab in set(labels):
        if lab >= len(CLASSES):
            sys.exit("error: %s: unexpected label %d" % (name, lab))
    return labels


def read_images(idx_dir, prefix, wanted):
    """Return {index: pixel bytes} for the indices in `wanted`.

    Reads sequentially and stops after the largest wanted index.
    """
    name = prefix + "-images-idx3-ubyte"
    out = {}
    with open_idx(idx_dir, name) as f:
        magic, count, rows, cols = struct.unpack(">IIII", read_exact(f, 16, name))
        if magic != 0x00000803:
            sys.exit("error: %s: bad magic 0x%08x" % (name, magic))
        if (rows, cols) != (28, 28):
            sys.exit("error: %s: expected 28x28 images, got %dx%d"
                     % (name, rows, cols))
        size = rows * cols
        last = max(wanted)
        if last >= count:
            sys.exit("error: %s: index %d out of range" % (name, last))
        for i in range(last + 1):
            pixels = read_exact(f, size, name)
            if i in wanted:
                out[i] = pixels
    return out, rows, cols


def png_chunk(kind, data):
    body = kind + data
    return (struct.pack(">I", len(data)) + body
            + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))


def encode_png_gray8(pixels, width, height):
    """Minimal PNG: IHDR (8-bit grayscale, colour type 0), IDAT, IEND."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width]
                   for y in range(height))  # filter type 0 (None) per row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))


def select(labels, per_class):
    """First `per_class` indices of each label, in file order."""
    chosen = {lab: [] for lab in range(len(CLASSES))}
    for i, lab in enumerate(labels):
        if len(chosen[lab]) < per_class:
            chosen[lab].append(i)
    for lab, idxs in chosen.items():
        if len(idxs) != per_class:
            sys.exit("error: only %d images of label %d" % (len(idxs), lab))
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("idx_dir", nargs="?", default=DEFAULT_IDX_DIR,
                    help="directory holding the Fashion-MNIST idx files "
                         "(default: %(default)s)")
    ap.add_argument("--out", default=DEFAULT_OUT_DIR,
                    help="output directory (default: %(default)s)")
    ap.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS,
                    help="training images per class (default: %(default)s)")
    ap.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS,
                    help="test images per class (default: %(default)s)")
    ap.add_argument("--val-per-class", type=int, default=0,
                    help="validation images per class, from the training idx "
                         "file after each label's training images (default: "
                         "%(default)s, no val/ folder)")
    args = ap.parse_args()

    # (split folder, idx file prefix, images per class, images of each label skipped first)
    splits = [("train", "train", args.train_per_class, 0),
              ("test", "t10k", args.test_per_class, 0)]
    if args.val_per_class > 0:
        splits.insert(1, ("val", "train", args.val_per_class,
                          args.train_per_class))
    for split, prefix, per_class, skip in splits:
        labels = read_labels(args.idx_dir, prefix)
        chosen = select(labels, skip + per_class)
        chosen = {lab: idxs[skip:] for lab, idxs in chosen.items()}
        wanted = set(i for idxs in chosen.values() for i in idxs)
        images, rows, cols = read_images(args.idx_dir, prefix, wanted)
        for lab, idxs in sorted(chosen.items()):
            class_dir = os.path.join(args.out, split, CLASSES[lab])
            os.makedirs(class_dir, exist_ok=True)
            # Remove stale PNGs so the folder holds exactly this selection.
            keep = set("%05d.png" % i for i in idxs)
            for fn in os.listdir(class_dir):
                if fn.endswith(".png") and fn not in keep:
                    os.remove(os.path.join(class_dir, fn))
            for i in idxs:
                png = encode_png_gray8(images[i], cols, rows)
                with open(os.path.join(class_dir, "%05d.png" % i), "wb") as f:
                    f.write(png)
        print("%s: %d classes x %d images from %s-*-idx*-ubyte"
              % (split, len(CLASSES), per_class, prefix))


if __name__ == "__main__":
    main()

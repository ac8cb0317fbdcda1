#!/usr/bin/env bash
# Would flip test-time augmentation (the average of the probabilities of an image and of its mirror image) be worth
# folding into the saved graph? Measured before building it: every model zip in a folder made by recipe-search.sh is run
# by `predict` over the validation and test images as they are and mirrored (ImageMagick's -flop, written as PNG so no
# second JPEG loss), and the two are averaged image by image. Prints accuracy and log-loss of each.
#   bash benchmarks/figures/flip-tta.sh <recipe-search out-folder>      (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: flip-tta.sh <folder written by recipe-search.sh>}"
# ImageMagick mirrors the images: the first convert on the PATH (or in /usr/bin) that is ImageMagick's, installed with apt if none is.
im=""
for c in $(type -ap convert) /usr/bin/convert; do "$c" -version 2>/dev/null | grep -q "^Version: ImageMagick" && { im=$c; break; }; done
if [ -z "$im" ]; then
  echo "installing imagemagick (apt-get)"
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo -n"
  $sudo apt-get install -y -qq imagemagick >/dev/null
  im=/usr/bin/convert
fi
cli="dotnet $out/bin/mlnet-transfer.dll"
for zip in "$out"/*.zip; do
  base=$(basename "$zip" .zip); set_name=${base%%-fe}; set_name=${set_name%%-ft*}
  data="$out/$set_name"
  [ -d "$data" ] || continue
  for split in val test; do
    mirrored="$out/mirrored/$set_name/$split"
    if [ ! -d "$mirrored" ]; then
      (cd "$data/$split" && find . -type f | while read -r f; do
        mkdir -p "$mirrored/$(dirname "$f")"; "$im" "$f" -flop "$mirrored/${f%.*}.png"; done)
    fi
    k=$(ls "$data/$split" | wc -l)
    $cli predict "$zip" "$data/$split" --json --top "$k" > "$out/$base.$split.plain.json"
    $cli predict "$zip" "$mirrored" --json --top "$k" > "$out/$base.$split.mirrored.json"
    python3 - "$out/$base.$split.plain.json" "$out/$base.$split.mirrored.json" "$data/$split" "$mirrored" "$base $split" <<'EOF'
import json, math, os, sys
plain, mirrored, root, mroot, name = sys.argv[1:6]
def load(path, root):
    out = {}
    for p in json.load(open(path)):
        rel = os.path.splitext(os.path.relpath(p["path"], root))[0]
        out[rel] = {s["label"]: s["score"] for s in p["top"]}
    return out
a, b = load(plain, root), load(mirrored, mroot)
assert a.keys() == b.keys(), "the mirrored images are not the same set"
def score(get):
    right = loss = 0
    for rel in a:
        truth = rel.split(os.sep)[0]
        p = get(rel)
        right += max(p, key=p.get) == truth
        loss -= math.log(max(p.get(truth, 0.0), 1e-15))
    return right / len(a), loss / len(a)
rows = [("as is", lambda r: a[r]), ("mirrored", lambda r: b[r]),
        ("average", lambda r: {c: (a[r][c] + b[r].get(c, 0.0)) / 2 for c in a[r]})]
print("  %-22s %4d images: " % (name, len(a)) + "; ".join("%s acc %.4f log-loss %.4f" % ((n,) + score(g)) for n, g in rows))
EOF
  done
done

"""Reads side-by-side.sh's logs (OUTDIR) and prints the table: both sides per round, medians, ours/PyTorch ratios.

Ours: the console's "through the conv base (N views) in X s (Y views/s)" lines, "validation accuracy" of the saved
model, and the epochs in <model>.metrics.json; PyTorch: pytorch_tutorial.py's last JSON line; both: /usr/bin/time -v.
Also writes OUTDIR/summary.json.
"""
from __future__ import annotations

import glob
import json
import os
import re
import statistics
import sys


def time_v(text: str) -> dict:
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["peak_rss_mib"] = int(m.group(1)) / 1024
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if m:
        s = 0.0
        for part in m.group(1).split(":"):
            s = s * 60 + float(part)
        out["wall_s"] = s
    return out


def last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    return {}


def ours_featurization(text: str) -> dict:
    """The "featurize ..." lines (pooled features, or freeze-boundary activations when fine-tuning); the "check ..."
    lines (pooled features for the data checks, fine-tuning only) apart."""
    out = {}
    for kind, key in (("featurize", "featurize"), ("check", "check")):
        views = secs = 0.0
        for m in re.finditer(kind + r" \w+: \d+ from the cache, \d+ through the conv base \((\d+) views\) in ([\d.]+) s", text):
            views += int(m.group(1))
            secs += float(m.group(2))
        out[f"{key}_views"], out[f"{key}_s"] = views, secs
        if secs:
            out[f"{key}_views_per_s"] = views / secs
    m = re.findall(r"validation accuracy ([\d.]+)", text)
    if m:
        out["val_accuracy"] = float(m[-1])
    return out


def _get(d, *names):
    """Case-insensitive nested lookup."""
    for name in names:
        if not isinstance(d, dict):
            return None
        d = next((v for k, v in d.items() if k.lower() == name.lower()), None)
    return d


def ours_epochs(metrics_path: str) -> dict:
    if not os.path.exists(metrics_path):
        return {}
    meta = json.load(open(metrics_path))
    epochs = _get(meta, "metadata", "fineTune", "epochs") or []
    out = {"epochs_run": len(epochs)}
    for phase in sorted({_get(e, "phase") for e in epochs}):
        secs = [_get(e, "seconds") for e in epochs if _get(e, "phase") == phase]
        out[f"epoch_s_mean_{phase}"] = sum(secs) / len(secs)
    if epochs:
        out["epoch_s_mean"] = sum(_get(e, "seconds") for e in epochs) / len(epochs)
        out["best_val_accuracy"] = max(_get(e, "validationAccuracy") for e in epochs)
        out["per_epoch"] = [(_get(e, "phase"), _get(e, "epoch"), round(_get(e, "seconds"), 2),
                             round(_get(e, "validationAccuracy"), 4)) for e in epochs]
    out["best_epoch"] = _get(meta, "metadata", "fineTune", "bestEpoch")
    return out


def read(path):
    return open(path, errors="replace").read() if os.path.exists(path) else ""


def main(outdir):
    rounds = sorted({int(re.match(r"r(\d+)-", os.path.basename(p)).group(1)) for p in glob.glob(os.path.join(outdir, "r*-*.log"))})
    rows = []
    for r in rounds:
        row = {"round": r}
        fe = []
        for p in sorted(glob.glob(os.path.join(outdir, f"r{r}-pytorch-fe-w*.log"))):
            t = read(p)
            j = last_json(t)
            if j:
                j.update({f"time_{k}": v for k, v in time_v(t).items()})
                fe.append(j)
        if fe:
            best = max(fe, key=lambda j: j["featurize_img_per_s"])
            row["pytorch_fe"] = best
            row["pytorch_fe_by_workers"] = {j["workers"]: j["featurize_img_per_s"] for j in fe}
        t = read(os.path.join(outdir, f"r{r}-ours-fe.log"))
        if t:
            row["ours_fe"] = {**ours_featurization(t), **{f"time_{k}": v for k, v in time_v(t).items()}}
        t = read(os.path.join(outdir, f"r{r}-pytorch-ft.log"))
        if t and last_json(t):
            row["pytorch_ft"] = {**last_json(t), **{f"time_{k}": v for k, v in time_v(t).items()}}
            row["pytorch_ft"]["epochs_run"] = len(row["pytorch_ft"].get("per_epoch", []))
        t = read(os.path.join(outdir, f"r{r}-ours-ft.log"))
        if t:
            row["ours_ft"] = {**ours_featurization(t), **ours_epochs(os.path.join(outdir, f"r{r}-ours-ft.metrics.json")),
                              **{f"time_{k}": v for k, v in time_v(t).items()}}
        rows.append(row)

    metrics = [
        ("featurization img/s (PyTorch best workers; ours views/s)", "pytorch_fe", "featurize_img_per_s", "ours_fe", "featurize_views_per_s", True),
        ("feature extraction: wall s to the model", "pytorch_fe", "time_wall_s", "ours_fe", "time_wall_s", False),
        ("feature extraction: peak RSS MiB", "pytorch_fe", "time_peak_rss_mib", "ours_fe", "time_peak_rss_mib", False),
        ("feature extraction: val accuracy", "pytorch_fe", "val_accuracy", "ours_fe", "val_accuracy", True),
        ("fine-tune: ours' freeze-boundary featurization views/s", "pytorch_ft", "-", "ours_ft", "featurize_views_per_s", True),
        ("fine-tune: epochs run (ours stops early, patience 5)", "pytorch_ft", "epochs_run", "ours_ft", "epochs_run", True),
        ("fine-tune: s/epoch, head phase", "pytorch_ft", "epoch_s_mean_head", "ours_ft", "epoch_s_mean_head", False),
        ("fine-tune: s/epoch, stage4 phase", "pytorch_ft", "epoch_s_mean_stage4", "ours_ft", "epoch_s_mean_fine-tune", False),
        ("fine-tune: s/epoch, all", "pytorch_ft", "epoch_s_mean", "ours_ft", "epoch_s_mean", False),
        ("fine-tune: wall s to the final model", "pytorch_ft", "time_wall_s", "ours_ft", "time_wall_s", False),
        ("fine-tune: peak RSS MiB", "pytorch_ft", "time_peak_rss_mib", "ours_ft", "time_peak_rss_mib", False),
        ("fine-tune: best val accuracy", "pytorch_ft", "best_val_accuracy", "ours_ft", "best_val_accuracy", True),
        ("fine-tune: val accuracy of the saved model", "pytorch_ft", "final_val_accuracy", "ours_ft", "val_accuracy", True),
    ]
    print()
    print(open(os.path.join(outdir, "machine.txt")).read().strip() if os.path.exists(os.path.join(outdir, "machine.txt")) else "")
    header = f"| {'metric':58} | {'PyTorch':>10} | {'ours':>10} | {'ours/PyTorch':>12} |"
    print(header)
    print("|" + "-" * 60 + "|" + "-" * 12 + "|" + "-" * 12 + "|" + "-" * 14 + "|")
    table = []
    for label, pk, pf, ok, of, _higher in metrics:
        pv = [r[pk][pf] for r in rows if pk in r and r[pk].get(pf) is not None]
        ov = [r[ok][of] for r in rows if ok in r and r[ok].get(of) is not None]
        p = statistics.median(pv) if pv else None
        o = statistics.median(ov) if ov else None
        ratio = o / p if p and o is not None else None
        table.append({"metric": label, "pytorch": p, "ours": o, "ratio": ratio, "rounds_pytorch": len(pv), "rounds_ours": len(ov)})
        f = lambda v: "-" if v is None else (f"{v:.4f}" if v < 2 else f"{v:.1f}")
        print(f"| {label:58} | {f(p):>10} | {f(o):>10} | {'-' if ratio is None else f'{ratio:.2f}':>12} |")
    print(f"(medians over {len(rows)} round(s); ratios > 1 mean ours is higher: faster for img/s, slower for seconds)")
    for r in rows:
        if "pytorch_fe_by_workers" in r:
            print(f"round {r['round']}: PyTorch featurization img/s by DataLoader workers: {r['pytorch_fe_by_workers']}")
        if "pytorch_ft" in r:
            print(f"round {r['round']}: PyTorch fine-tuning DataLoader workers {r['pytorch_ft'].get('workers')}")
            print(f"round {r['round']}: PyTorch epochs (phase, s, val acc): " +
                  ", ".join(f"{e['phase']} {e['epoch_s']} {e['val_accuracy']}" for e in r["pytorch_ft"]["per_epoch"]))
        if "ours_ft" in r and "per_epoch" in r["ours_ft"]:
            o = r["ours_ft"]
            print(f"round {r['round']}: ours epochs (phase, epoch, s, val acc): {o['per_epoch']}; kept {o.get('best_epoch')};"
                  f" freeze-boundary featurization {o.get('featurize_views', 0):.0f} views in {o.get('featurize_s', 0):.1f} s;"
                  f" data-check featurization (whole net) {o.get('check_views', 0):.0f} views in {o.get('check_s', 0):.1f} s")
    json.dump({"rounds": rows, "table": table}, open(os.path.join(outdir, "summary.json"), "w"), indent=1, default=str)
    print(json.dumps({"table": table}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/peer-side")

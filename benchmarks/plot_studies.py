"""Figures and tables of the paper-style studies, read from the `lrmilp bench` results.

    python benchmarks/plot_studies.py [lines] [serra] [faces] [cnn] [peers]     # default: all

Reads `benchmarks/results/study-*.jsonl` (the latest record of each run) and writes PNGs to
`benchmarks/figures/`; the tables (cnn, peers, serra) are printed as markdown.  Run the studies first
(`lrmilp bench benchmarks/study-*.toml`); a study without results is skipped with a note.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FIGURES = HERE / "figures"
INDEX = HERE.parent / "models" / "index.json"


def records(study: str) -> list[dict]:
    """The latest record of every run of ``study`` (benchmarks/results/STUDY.jsonl), in file order."""
    path = RESULTS / f"{study}.jsonl"
    if not path.exists():
        print(f"[plot] {path} missing: run `lrmilp bench benchmarks/{study}.toml` first", file=sys.stderr)
        return []
    latest = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            latest[rec["run_id"]] = rec
    return list(latest.values())


def model_info() -> dict[str, dict]:
    """models/index.json by model name (file stem)."""
    return {m["name"]: m for m in json.loads(INDEX.read_text())["models"]}


def stem(rec: dict) -> str:
    return Path(rec["model"]).stem


def save(fig, name: str) -> None:
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"[plot] wrote {path.relative_to(HERE.parent)}")


def fmt_int(v) -> str:
    return "-" if v is None else f"{int(v):,}"


# --- (b) Hanin & Rolnick: regions along lines / neurons through training --------------------------

def lines() -> None:
    recs = [r for r in records("study-lines") if r["status"] == "ok"]
    if not recs:
        return
    info = model_info()
    series = defaultdict(list)  # source -> [(epoch, per-line regions/neuron)]
    for r in recs:
        res = r["result"]
        epoch = info[stem(r)]["epoch"]
        per = np.asarray(res["regions"], dtype=float) / res["neurons"]
        series[res["source"]].append((epoch, per, res["mean_length"]))
    labels = {"digits:test": "segments between two test digits", "domain": "segments between uniform points of [0,1]^64"}
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    print("\n| epoch | test acc. | " + " | ".join(f"{labels[s]}: mean (std)" for s in sorted(series)) + " |")
    print("|---|---|" + "---|" * len(series))
    table = defaultdict(dict)
    for k, (src, pts) in enumerate(sorted(series.items())):
        pts.sort(key=lambda p: p[0])
        ep = np.array([p[0] for p in pts], dtype=float)
        x = np.where(ep == 0, 0.5, ep) * (1 + 0.03 * (2 * k - 1))  # epoch 0 drawn at 0.5 on the log axis
        mean = np.array([p[1].mean() for p in pts])
        std = np.array([p[1].std() for p in pts])
        q1, q3 = (np.array([np.quantile(p[1], q) for p in pts]) for q in (0.25, 0.75))
        colour = f"C{k}"
        ax.fill_between(x, q1, q3, color=colour, alpha=0.18, label=f"{labels[src]}: quartiles")
        ax.errorbar(x, mean, yerr=std, color=colour, marker="o", capsize=3,
                    label=f"{labels[src]}: mean ± std (1000 segments, mean length {np.mean([p[2] for p in pts]):.2f})")
        for e, m, s in zip(ep, mean, std):
            table[int(e)][src] = f"{m:.3f} ({s:.3f})"
    acc = {info[stem(r)]["epoch"]: info[stem(r)]["test_accuracy"] for r in recs}
    for e in sorted(table):
        print(f"| {e} | {acc[e]:.3f} | " + " | ".join(table[e].get(s, "-") for s in sorted(series)) + " |")
    ax.set_xscale("log")
    ticks = sorted({int(p[0]) for pts in series.values() for p in pts})
    ax.set_xticks([0.5 if t == 0 else t for t in ticks], [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training epoch (0 = initialisation; log scale)")
    ax.set_ylabel("regions along a segment / neurons (22)")
    ax.set_title("Hanin & Rolnick: regions along lines per neuron, digits MLP 64-11-11-10")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)
    save(fig, "study-lines.png")


# --- (a) Serra et al.: 21 digits MLPs ------------------------------------------------------------

def serra() -> None:
    recs = records("study-serra")
    if not recs:
        return
    info = model_info()
    rows = defaultdict(dict)
    for r in recs:
        rows[stem(r)][r["task"]] = r
    data = []
    for name, tasks in rows.items():
        m = re.match(r"digits-mlp-64-(\d+)-(\d+)-10$", name)
        if not m:
            continue
        n1 = int(m.group(1))
        c = tasks.get("count")
        lb = tasks.get("lower-bound")
        sm = tasks.get("sample")
        bd = tasks.get("bounds")
        em = (tasks.get("serra2020") or {}).get("result")
        es = (tasks.get("estimate") or {}).get("result")
        d = {"name": name, "n1": n1, "n2": int(m.group(2)), "acc": info[name]["test_accuracy"],
             "count": c["result"]["regions"] if c and c.get("result") else None,
             "complete": bool(c and c.get("result") and c["result"].get("complete")),
             "count_s": c["seconds"] if c else None,
             "xor": lb["result"]["lower_bound"] if lb and lb.get("result") else None,
             "xor_conf": lb["result"].get("confidence") if lb and lb.get("result") else None,
             "xor_s": lb["seconds"] if lb else None,
             "sample": sm["result"]["distinct_patterns"] if sm and sm.get("result") else None,
             "serra": bd["result"]["serra2018"] if bd and bd.get("result") else None,
             "serra_rank": bd["result"].get("serra2018_rank") if bd and bd.get("result") else None,
             "montufar": bd["result"]["montufar2017"] if bd and bd.get("result") else None,
             "serra2020": em["value"] if em else None,
             "est": es["estimate"] if es else None, "est_iv": es.get("interval") if es else None,
             "est_conf": es.get("confidence") if es else None, "est_s": es.get("seconds") if es else None}
        d["best_lower"] = max(v for v in (d["count"], d["xor"], d["sample"], 1) if v is not None)
        data.append(d)
    data.sort(key=lambda d: d["n1"])
    limit = max((r["time_limit"] for r in recs if r["task"] == "count"), default=None)
    print(f"\n| n1-n2 | test acc. | count (tree, {limit:g} s) | s | XOR lower bound (conf.) | sampled | "
          "estimate [interval] (conf.) | estimate s | serra2020 | serra2018 | serra2018_rank | montufar2017 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for d in data:
        cnt = "-" if d["count"] is None else (fmt_int(d["count"]) if d["complete"] else ">=" + fmt_int(d["count"]))
        xor = "-" if d["xor"] is None else f"{fmt_int(d['xor'])} ({d['xor_conf']:.2g})"
        est = ("-" if d["est"] is None else
               f"{fmt_int(round(d['est']))} [{fmt_int(round(d['est_iv'][0]))}, {fmt_int(round(d['est_iv'][1]))}] "
               f"({d['est_conf']:.2g})")
        est_s = "-" if d["est_s"] is None else f"{d['est_s']:.1f}"
        print(f"| {d['n1']}-{d['n2']} | {d['acc']:.3f} | {cnt} | {d['count_s']:.1f} | {xor} | {fmt_int(d['sample'])} | "
              f"{est} | {est_s} | {fmt_int(d['serra2020'])} | {fmt_int(d['serra'])} | {fmt_int(d['serra_rank'])} | "
              f"{fmt_int(d['montufar'])} |")

    n1 = np.array([d["n1"] for d in data])
    done = np.array([d["complete"] for d in data])
    cnt = np.array([d["count"] or np.nan for d in data], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(n1, [float(d["serra"]) for d in data], "-", color="C3", label="serra2018 upper bound")
    ax.plot(n1, [float(d["montufar"]) for d in data], "--", color="C1", label="montufar2017 upper bound")
    if any(d["serra2020"] is not None for d in data):
        ax.plot(n1, [float(d["serra2020"] or np.nan) for d in data], "-.", color="C5",
                label="serra2020 (activation-based, these weights)")
    if any(d["serra_rank"] not in (None, d["serra"]) for d in data):  # drawn only where the ranks lower it
        ax.plot(n1, [float(d["serra_rank"] or np.nan) for d in data], ":", color="C4",
                label="serra2018_rank (ranks of the trained weights)")
    ax.plot(n1[done], cnt[done], "o", color="C0", ms=7, label="exact count (tree)")
    ax.plot(n1[~done], cnt[~done], "^", mfc="none", color="C0", ms=8,
            label=f"count stopped at {limit:g} s (a lower bound)")
    xor = np.array([d["xor"] or np.nan for d in data], dtype=float)
    ax.plot(n1, xor, "x", color="C2", ms=7, label="XOR lower bound (confidence 0.95)")
    ax.plot(n1, [d["sample"] or np.nan for d in data], "+", color="C7", ms=8, label="distinct patterns of 10^5 samples")
    have = [d for d in data if d["est"] is not None]
    if have:
        e = np.array([d["est"] for d in have], dtype=float)
        lo_hi = np.array([d["est_iv"] for d in have], dtype=float)
        ax.errorbar(np.array([d["n1"] for d in have]) + 0.2, e, yerr=[e - lo_hi[:, 0], lo_hi[:, 1] - e], fmt="s",
                    color="C6", ms=4, capsize=2,
                    # the lowest confidence: a count under thresh is exact (confidence 1), the rest are not
                    label=f"estimate with its interval (confidence {min(d['est_conf'] for d in have):.2g})")
    ax.set_yscale("log")
    ax.set_xticks(n1)
    ax.set_xlabel("n1 (first hidden layer; n2 = 22 - n1)")
    ax.set_ylabel("linear regions in [0, 1]^64")
    ax.set_title("Serra et al.: digits MLPs 64-n1-n2-10, counts against upper bounds")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, "study-serra-counts.png")

    fig, ax = plt.subplots(figsize=(8, 5.5))
    acc = np.array([d["acc"] for d in data])
    certain = np.array([max(d["count"] or 1, d["sample"] or 1) for d in data], dtype=float)
    ax.plot(acc[done], certain[done], "o", color="C0", ms=7, label="exact count (tree)")
    ax.plot(acc[~done], certain[~done], "^", mfc="none", color="C0", ms=8,
            label=f"count stopped at {limit:g} s (a certain lower bound)")
    ax.plot(acc, xor, "x", color="C2", ms=7, label="XOR lower bound (confidence 0.95)")
    for d, a, b in zip(data, acc, certain):
        ax.annotate(f"{d['n1']}-{d['n2']}", (a, b), textcoords="offset points", fontsize=7,
                    xytext=(-30, -3) if d["n1"] % 2 else (5, -3))
    ax.set_yscale("log")
    ax.set_xlabel("test accuracy (360 test digits)")
    ax.set_ylabel("linear regions in [0, 1]^64 (log scale)")
    ax.set_title("Serra et al.: regions against test accuracy (labels: n1-n2)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    save(fig, "study-serra-accuracy.png")


# --- (c) Fan et al.: faces per region ------------------------------------------------------------

def faces() -> None:
    recs = [r for r in records("study-faces") if r["status"] == "ok"]
    if not recs:
        return
    info = model_info()
    hist = defaultdict(lambda: defaultdict(int))  # (dim, epoch) -> faces -> regions
    regions = defaultdict(int)
    for r in recs:
        res = r["result"]
        key = (res["slice_dim"], info[stem(r)]["epoch"])
        for k, v in res["histogram"].items():
            hist[key][int(k)] += v
        regions[key] += res["regions"]
    dims = sorted({k[0] for k in hist})
    epochs = sorted({k[1] for k in hist})
    first, last = epochs[0], epochs[-1]
    fig, axes = plt.subplots(1, len(dims) + 1, figsize=(5 * (len(dims) + 1), 4.3))
    print("\n| slice | epoch | regions | mean faces | faces: regions |")
    print("|---|---|---|---|---|")
    for ax, dim in zip(axes, dims):
        for j, (ep, colour) in enumerate(((first, "C0"), (last, "C3"))):
            h = hist[(dim, ep)]
            ks = np.array(sorted(h))
            frac = np.array([h[k] for k in ks], dtype=float) / regions[(dim, ep)]
            mean = sum(k * v for k, v in h.items()) / regions[(dim, ep)]
            ax.bar(ks + (j - 0.5) * 0.4, frac, width=0.4, color=colour,
                   label=f"epoch {ep}{' (init)' if ep == 0 else ''}: {regions[(dim, ep)]} regions, mean {mean:.2f}")
        ax.set_xlabel("faces (facets) of a region")
        ax.set_ylabel("fraction of regions")
        slices = len({json.dumps(r["options"]) for r in recs if r["result"]["slice_dim"] == dim})
        ax.set_title(f"{dim}-D slices through {dim + 1} test digits ({slices} slices)")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.2)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    for dim in dims:
        for ep in epochs:
            h = hist[(dim, ep)]
            mean = sum(k * v for k, v in h.items()) / regions[(dim, ep)]
            print(f"| {dim}-D | {ep} | {regions[(dim, ep)]} | {mean:.2f} | "
                  + ", ".join(f"{k}: {h[k]}" for k in sorted(h)) + " |")
    ax = axes[-1]
    for dim, colour in zip(dims, ("C0", "C3", "C2")):
        means = [sum(k * v for k, v in hist[(dim, e)].items()) / regions[(dim, e)] for e in epochs]
        x = [0.5 if e == 0 else e for e in epochs]
        ax.plot(x, means, "o-", color=colour, label=f"{dim}-D slices: mean faces")
        ax2 = ax.twinx() if dim == dims[0] else ax2
        ax2.plot(x, [regions[(dim, e)] for e in epochs], "s:", color=colour, alpha=0.6,
                 label=f"{dim}-D slices: regions (right axis)")
    ax.set_xscale("log")
    ax.set_xticks([0.5 if e == 0 else e for e in epochs], [str(e) for e in epochs])
    ax.minorticks_off()
    ax.set_xlabel("training epoch (log scale)")
    ax.set_ylabel("mean faces per region")
    ax2.set_ylabel("regions in all slices")
    ax.set_title("through training")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7.5, loc="center right")
    ax.grid(alpha=0.3)
    fig.suptitle("Fan et al.: faces per linear region, digits MLP 64-11-11-10, initialisation vs trained", y=1.02)
    save(fig, "study-faces.png")


# --- (d) Xiong et al.: one-layer CNNs ------------------------------------------------------------

def cnn() -> None:
    recs = records("study-cnn")
    if not recs:
        return
    by = defaultdict(lambda: defaultdict(dict))  # arch -> seed -> task -> record
    for r in recs:
        m = re.match(r"cnn-(\d+)x(\d+)x(\d+)-f(\d+)k(\d+)x(\d+)s(\d+)-s(\d+)$", stem(r))
        arch = tuple(int(g) for g in m.groups()[:-1])
        by[arch][int(m.group(8))][r["task"]] = r
    print("\n| input C×H×W | filters | kernel | stride | filters overlap | n0 | neurons | xiong2020 (Thm 2) | "
          "one_layer_exact | counts (seeds 0, 1, 2) | count s | attained |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = sorted(by, key=lambda a: (a[1] > 1, a[0] * a[1] * a[2], a[3], a))
    for arch in order:
        c, h, w, f, kh, kw, s = arch
        seeds = by[arch]
        counts, secs, exact, xiong, neurons = [], [], set(), set(), set()
        for seed in sorted(seeds):
            t = seeds[seed]
            cr = t.get("count", {}).get("result") or {}
            counts.append(fmt_int(cr.get("regions")) + ("" if cr.get("complete", False) else " (stopped)"))
            secs.append(t.get("count", {}).get("seconds", 0))
            b = t.get("bounds", {}).get("result") or {}
            exact.add(b.get("one_layer_exact"))
            xiong.add(b.get("xiong2020"))
        overlap = "yes" if s < max(kh, kw) and (kh > 1 or kw > 1) else "no"
        dims = "1-D" if h == 1 else "2-D"
        oh, ow = (h - kh) // s + 1, (w - kw) // s + 1
        x = xiong.pop() if len(xiong) == 1 else None
        ex = "/".join(fmt_int(e) for e in sorted(exact, key=lambda e: e or 0))
        counts_int = [int(cn.replace(",", "")) for cn in counts if cn.replace(",", "").isdigit()]
        attained = "yes" if counts_int and all(v == x for v in counts_int) else "no"
        print(f"| {c}×{h}×{w} | {f} | {kh}×{kw} ({dims}) | {s} | {overlap} | {c * h * w} | {f * oh * ow} | "
              f"{fmt_int(x)} | {ex} | {', '.join(counts)} | {max(secs):.1f} | {attained} |")


# --- (e) peers and lower bounds ------------------------------------------------------------------

def peers() -> None:
    recs = records("study-peers")
    if not recs:
        return
    by = defaultdict(list)
    for r in recs:
        by[stem(r)].append(r)
    print("\n| net | task | method | status | regions / bound | complete | seconds | note |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(by):
        exact = None
        for r in by[name]:
            if r["task"] == "count" and r["options"].get("method", "tree") == "tree" and r["status"] == "ok":
                exact = r["result"]["regions"]
        methods = ["tree", "scip", "gurobi", "milp"]
        for r in sorted(by[name], key=lambda r: (["count", "lower-bound", "sample"].index(r["task"]),
                                                 methods.index(r["options"].get("method", "tree")))):
            res = r.get("result") or {}
            method = r["options"].get("method", "tree" if r["task"] != "sample" else "uniform")
            if r["task"] == "count":
                v = res.get("regions")
                val = "-" if v is None else (fmt_int(v) if res.get("complete") else ">=" + fmt_int(v))
                note = "" if v is None or exact is None or not res.get("complete") or method == "tree" else (
                    "= tree" if v == exact else f"differs from tree ({exact})")
            elif r["task"] == "lower-bound":
                v = res.get("lower_bound")
                val = "-" if v is None else f">={fmt_int(v)}"
                note = "" if v is None else (f"level {res.get('level')}, confidence {res.get('confidence'):.3g}"
                                             + (f", exact/bound = {exact / v:.1f}" if exact else ""))
            else:
                v = res.get("distinct_patterns")
                val = "-" if v is None else f">={fmt_int(v)}"
                note = "" if v is None else f"{r['options'].get('samples'):,} samples" + (
                    f", exact/sampled = {exact / v:.2f}" if exact else "")
            if r["status"] == "unavailable":
                note = (r.get("error") or "")[:80]
            print(f"| {name} | {r['task']} | {method} | {r['status']} | {val} | "
                  f"{'-' if res.get('complete') is None else ('yes' if res.get('complete') else 'no')} | "
                  f"{r['seconds']:.1f} | {note} |")


STUDIES = {"lines": lines, "serra": serra, "faces": faces, "cnn": cnn, "peers": peers}


def main(argv: list[str]) -> None:
    names = argv or list(STUDIES)
    bad = [n for n in names if n not in STUDIES]
    if bad:
        sys.exit(f"unknown study {bad[0]} (expected {', '.join(STUDIES)})")
    for n in names:
        STUDIES[n]()


if __name__ == "__main__":
    main(sys.argv[1:])

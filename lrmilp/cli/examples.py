"""Examples shown at the end of every command's ``--help`` (models from the repository's ``models/``)."""

from __future__ import annotations

import click

EXAMPLES: dict[str, list[str]] = {
    "info": ["lrmilp info models/digits-cnn-f2k3s1-10.npz",
             "lrmilp info models/digits-mlp-64-11-11-10.onnx --json"],
    "tighten": ["lrmilp tighten models/random-4-12-12-s0.npz",
                "lrmilp tighten models/digits-mlp-64-11-11-10.npz --method milp --json"],
    "export-milp": ["lrmilp export-milp models/random-4-12-12-s0.npz --out net.lp",
                    "lrmilp export-milp models/digits-mlp-64-4-18-10.npz --out net.mps"],
    "count": ["lrmilp count models/random-4-12-12-s0.npz --json",
              "lrmilp count models/digits-mlp-64-11-11-10.npz --time-limit 60 --regions-out regions.jsonl",
              "lrmilp count models/random-4-12-12-s0.npz --method scip        # a solver peer",
              "lrmilp count MODEL --around points.npy --radius 0.05 --box 0 1  # local complexity",
              "lrmilp count models/digits-mlp-64-2-20-10.npz --class-wins 3      # where class 3 wins"],
    "bounds": ["lrmilp bounds --arch 784,22,10",
               "lrmilp bounds models/digits-mlp-64-11-11-10.npz --empirical",
               "lrmilp bounds models/random-4-12-12-s0.npz --with-count"],
    "lower-bound": ["lrmilp lower-bound models/digits-mlp-64-11-11-10.npz",
                    "lrmilp lower-bound models/random-4-12-12-s0.npz --confidence 0.95 --trials 5 --json",
                    "lrmilp lower-bound MODEL --xors 12 --method scip   # one level, SCIP's XOR constraints"],
    "sample": ["lrmilp sample models/digits-mlp-64-11-11-10.npz --samples 100000",
               "lrmilp sample MODEL --distribution data --data X.npy --json"],
    "line": ["lrmilp line models/random-4-12-12-s0.npz --start A.npy --end B.npy",
             "lrmilp line MODEL --start A.npy --direction D.npy --infinite --json"],
    "plane": ["lrmilp plane models/random-2-20-20-20-s0.npz --plot plane.png --color active",
              "lrmilp plane models/digits-mlp-64-11-11-10.npz --points P.npy --plot plane.pdf --boundary"],
    "faces": ["lrmilp faces models/random-4-12-12-s0.npz --time-limit 30",
              "lrmilp faces models/random-2-20-20-20-s0.npz --json"],
    "distance": ["lrmilp distance models/digits-mlp-64-11-11-10.npz --samples 1000",
                 "lrmilp distance MODEL --points X.npy --per-point --json"],
    "cones": ["lrmilp cones models/digits-cnn-f2k3s1-f2k3s1-10.npz"],
    "bench": ["lrmilp bench benchmarks/study-serra.toml",
              "lrmilp bench SPEC.toml --dry-run   # list the runs and which are done"],
    "estimate": ["lrmilp estimate models/random-4-12-12-s0.npz",
                 "lrmilp estimate models/digits-mlp-64-11-11-10.npz --epsilon 0.8 --delta 0.2 --jobs 2 --json"],
}
"""Command name -> example command lines (a comment after two spaces says what a line shows)."""


def add_examples(group: click.Group) -> None:
    """Append an "Examples" block to the help of every command of ``group`` that has examples."""
    for name, command in group.commands.items():
        lines = EXAMPLES.get(name)
        if lines and command.help and "Examples:" not in command.help:
            # \b keeps click from re-wrapping the block
            command.help = command.help.rstrip() + "\n\n\b\nExamples:\n" + "\n".join(f"  {ln}" for ln in lines)

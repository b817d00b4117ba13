"""Print a Markdown table of campaign runs side by side, step by step: each evaluation's headline metric and, for
digits, the share confidently classified. For A/B notes such as the README's "Train everything".

    python scripts/compare_runs.py runs/cpu/mnist-dcgan runs/cpu/mnist-dcgan-code [--every 2000] [--upto 12000]
"""
import argparse
import json
import sys
from pathlib import Path


def evaluations(run_dir: Path) -> dict[int, dict]:
    """step → that evaluation's metrics, from the run's campaign.json (a later record of a step wins)."""
    try:
        state = json.loads((run_dir / "campaign.json").read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"{run_dir}: no readable campaign.json ({e.__class__.__name__})")
    return {int(e["step"]): {**e.get("metrics", {}), "score": e["score"]} for e in state.get("evaluations", [])
            if e.get("score") is not None}


def cell(m: dict | None) -> str:
    if m is None:
        return "–"
    sure = m.get("confidently_classified")
    return f"{m['score']:.4g}" + (f" / {100 * sure:.1f}%" if sure is not None else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (each with its campaign.json)")
    ap.add_argument("--every", type=int, default=1, help="only steps that are multiples of this")
    ap.add_argument("--upto", type=int, default=None, help="only steps up to this one")
    args = ap.parse_args(argv)
    evals = [evaluations(r) for r in args.runs]
    steps = sorted({s for e in evals for s in e if s % args.every == 0 and (args.upto is None or s <= args.upto)})
    print("| step | " + " | ".join(r.name for r in args.runs) + " |")
    print("|---" * (len(args.runs) + 1) + "|")
    for s in steps:
        print(f"| {s:,} | " + " | ".join(cell(e.get(s)) for e in evals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

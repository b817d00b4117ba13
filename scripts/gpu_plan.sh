#!/usr/bin/env bash
# The GPU plan: one command that a bare GPU machine runs from the repository root (README, "GPU plan").
#   bash scripts/gpu_plan.sh DATA_DIR OUT_DIR              the real job: ends, packed, within 9 minutes
#   bash scripts/gpu_plan.sh --rehearse DATA_DIR OUT_DIR   the same steps on the CPU at toy sizes (under 3 minutes)
# DATA_DIR holds celeba/celeba128-webp.tar.gz and text/lines.txt. OUT_DIR receives at most 8 files (checkpoints,
# results.tar.gz, manifest.json, log.txt). The work is done by training/gpu_plan.py; this wrapper is the hard
# deadline: `timeout` stops it at the budget, and if it could not pack, a manifest and log are still written.
# Environment: GPU_PLAN_BUDGET (seconds, default 540; rehearsal 178), PYTHON (default python3),
# GPU_PLAN_INCEPTION (default /root/cache/inception-fp16.pt), GPU_PLAN_WORK (work folder).
set -u
STARTED=$(date +%s.%N)
cd "$(dirname "$0")/.." || exit 2
REHEARSE=""
ARGS=()
for a in "$@"; do
  case "$a" in
    --rehearse) REHEARSE=--rehearse ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) ARGS+=("$a") ;;
  esac
done
if [ ${#ARGS[@]} -ne 2 ]; then
  echo "usage: bash scripts/gpu_plan.sh [--rehearse] DATA_DIR OUT_DIR" >&2
  exit 2
fi
DATA=${ARGS[0]}
OUT=${ARGS[1]}
if [ -n "$REHEARSE" ]; then
  BUDGET=${GPU_PLAN_BUDGET:-178}; NICE="nice -n 10"     # the CPU is shared: the rehearsal stays polite
else
  BUDGET=${GPU_PLAN_BUDGET:-540}; NICE=""
fi
PY=${PYTHON:-python3}
if ! mkdir -p "$OUT" 2>/dev/null || [ ! -w "$OUT" ]; then
  echo "error: cannot write to the output folder '$OUT'" >&2
  exit 2
fi
EXTRA=()
[ -n "${GPU_PLAN_INCEPTION:-}" ] && EXTRA+=(--inception "$GPU_PLAN_INCEPTION")
[ -n "${GPU_PLAN_WORK:-}" ] && EXTRA+=(--work "$GPU_PLAN_WORK")
rm -f "$OUT/manifest.json"
# the Python part packs by BUDGET-15 s; SIGTERM at BUDGET-10 s makes it stop and pack; SIGKILL 5 s later
# shellcheck disable=SC2086
timeout -k 5 $((BUDGET - 10)) $NICE "$PY" -m training.gpu_plan $REHEARSE --budget $((BUDGET - 15)) \
  --started "$STARTED" "${EXTRA[@]}" "$DATA" "$OUT"
rc=$?
if [ ! -s "$OUT/manifest.json" ]; then
  why="the plan's Python part ended without packing (exit $rc$([ $rc -ge 124 ] && echo ': killed at the time limit'))"
  echo "error: $why" >&2
  echo "[shell] $why" >>"$OUT/log.txt"
  files=$(cd "$OUT" && ls -1 | grep -v '^manifest.json$' | sed 's/.*/"&"/' | paste -sd, -)
  printf '{"complete": false, "problems": ["%s"], "exit": %d, "files_present": [%s]}\n' "$why" "$rc" "$files" \
    >"$OUT/manifest.json"
  [ $rc -eq 0 ] && rc=1
fi
exit $rc

#!/usr/bin/env bash
# Drive the real `charnn tui` in tmux, as a new user would: train -> watch -> stop -> generate
# at temperatures 0.5 and 1.2 side by side -> quit. Each step's screen is saved as text.
#
#   benchmarks/tui_tmux.sh [COLSxROWS] [TRAIN_SECONDS] [CORPUS]
#   e.g. benchmarks/tui_tmux.sh 80x24 90
#   EXTRA="--layers 1 --batch-size 16 --seq-len 64" benchmarks/tui_tmux.sh   # typed into "Extra flags"
#
# Screens go to $OUT (default ./tui-captures/COLSxROWS/). Runs go to a fresh CHARNN_HOME
# unless one is set. Needs tmux. Exits non-zero, saying which step, if a screen never shows up.
set -euo pipefail

SIZE=${1:-80x24}
TRAIN_SECONDS=${2:-90}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${3:-$ROOT/../shared/data/tinyshakespeare.txt}
COLS=${SIZE%x*}
ROWS=${SIZE#*x}
OUT=${OUT:-$PWD/tui-captures/$SIZE}
export CHARNN_HOME=${CHARNN_HOME:-$(mktemp -d /tmp/charnn-tui-tmux.XXXXXX)}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
SESSION=charnn-tui-$$
mkdir -p "$OUT"

cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null || true; }
trap cleanup EXIT

screen_text() { tmux capture-pane -t "$SESSION" -p; }
save() { screen_text > "$OUT/$1.txt"; echo "--- $1 ($SIZE) ---"; cat "$OUT/$1.txt"; }
keys() { tmux send-keys -t "$SESSION" "$@"; sleep 0.4; }
type_text() { tmux send-keys -t "$SESSION" -l -- "$1"; sleep 0.4; }

# wait_for PATTERN SECONDS STEP: poll the screen until PATTERN (extended regex) shows, or fail
wait_for() {
  local deadline=$((SECONDS + $2))
  until screen_text | grep -qE -- "$1"; do
    if ((SECONDS > deadline)); then
      screen_text > "$OUT/failed-$3.txt"
      echo "tui_tmux: '$1' never appeared ($3); screen saved in $OUT/failed-$3.txt" >&2
      exit 1
    fi
    sleep 0.5
  done
}

tmux new-session -d -s "$SESSION" -x "$COLS" -y "$ROWS" \
  "cd '$ROOT' && '$PYTHON' -m charnn tui; echo TUI-EXITED rc=\$?; sleep 30"
wait_for "New training run" 60 start
save 01-train-form

# The form: corpus, then Tab through Browse, Tokens and Model size to "Train for"
type_text "$CORPUS"
keys Tab Tab Tab Tab
type_text "${TRAIN_SECONDS}s"
if [[ -n "${EXTRA:-}" ]]; then
  keys Tab Tab
  type_text "$EXTRA"
fi
keys Enter
wait_for "bits/char" 60 dashboard
wait_for "step [0-9,]+ · val" $((TRAIN_SECONDS + 120)) first-sample  # a sample titled "step N · val X bpc"
sleep $((TRAIN_SECONDS / 2))
save 02-train-mid-run

keys s  # stop: the trainer saves a resumable checkpoint, evaluates, and says Done
wait_for "● (stopped|finished)" 600 stopped
save 03-train-stopped

keys F2
wait_for "^ model  .+\.pt · " 120 model-loaded  # the Generate screen's model line, once loaded
keys c           # compare two temperatures side by side
keys - - -       # 0.80 -> 0.50 on the left; the right pane keeps 1.20
keys g
sleep 4
save 04-generate-0.5-vs-1.2

keys F4
wait_for "best bpc" 20 models
save 05-models

keys C-q
wait_for "TUI-EXITED rc=0" 60 quit
save 06-after-quit
echo "tui_tmux: OK; screens in $OUT, runs in $CHARNN_HOME"

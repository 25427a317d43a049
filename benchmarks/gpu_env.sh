# Sourced by the GPU scripts (gpu_check.sh, gpu_chat.sh): a lent GPU machine has no network, so wheels of
# anything missing there come in $WHEELS (default .devcarry) and are installed to /tmp/site; charnn runs
# from this checkout with its home in /tmp; logs go to $OUT; `stamp` heads each part with the time so far.
OUT=${OUT:?set OUT to a folder for logs}
WHEELS=${WHEELS:-.devcarry}
export PYTHONUNBUFFERED=1 CHARNN_HOME=/tmp/charnn-home
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "=== $1 (at $(($(date +%s) - t0)) s)"; }

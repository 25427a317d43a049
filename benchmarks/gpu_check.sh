#!/usr/bin/env bash
# The GPU checks in one short script, for a lent GPU machine with no network (see benchmarks/README.md):
# the CUDA training path, throughput against the plain reference and raw cuDNN, generation, and
# time to quality at BUDGET seconds for the defaults (beside the plain reference) and for one lever
# (LEVER, extra `charnn train` flags).
# Each part runs on even if one before it failed; logs and results go to $OUT.
#
#   OUT=/tmp/gpu benchmarks/gpu_check.sh                     # on the GPU machine
#   DEV=cpu BUDGET=5 SIZES=1x64 OUT=/tmp/gpu benchmarks/gpu_check.sh   # dry run of the script here
#
# Needs: python3 with torch; tinyshakespeare at $CHARNN_TINYSHAKESPEARE (default
# .devcarry/tinyshakespeare.txt); wheels of anything missing there (platformdirs) in $WHEELS
# (default .devcarry), installed to /tmp/site. About 11 minutes on an H200 at BUDGET=180 (charnn's
# runs end after 60 epochs, ~75 s there; the reference uses the whole budget).
set -u
DEV=${DEV:-cuda}
BUDGET=${BUDGET:-180}
LEVER=${LEVER:---dropout 0.7}
SIZES=${SIZES:-3x1024 2x1024}
export CHARNN_TINYSHAKESPEARE=${CHARNN_TINYSHAKESPEARE:-$PWD/.devcarry/tinyshakespeare.txt}
# shellcheck source=benchmarks/gpu_env.sh
. "$(dirname "$0")/gpu_env.sh"

stamp "machine" | tee "$OUT/smoke.log"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1
    python3 - "$DEV" <<'EOF'
import sys, torch
dev = torch.device(sys.argv[1])
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
if dev.type == "cuda":
    print("gpu", torch.cuda.get_device_name(dev))
    # which precision cuDNN's LSTM runs in under bf16 autocast
    rnn = torch.nn.LSTM(64, 64, 2, batch_first=True).to(dev)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, _ = rnn(torch.randn(4, 8, 64, device=dev))
    print("lstm output dtype under bf16 autocast:", out.dtype)
EOF
    stamp "charnn train / generate / eval, 30 steps"
    python3 -m charnn train tinyshakespeare --steps 30 --device "$DEV" --name gpu-smoke 2>&1 | tail -5
    python3 -m charnn generate -c gpu-smoke --length 200 --seed 1 --device "$DEV" 2>&1 | tail -3
    python3 -m charnn eval gpu-smoke "$CHARNN_TINYSHAKESPEARE" --device "$DEV" 2>&1 | tail -3
} 2>&1 | tee -a "$OUT/smoke.log"

stamp "throughput" | tee "$OUT/throughput.log"
timeout 240 python3 benchmarks/throughput.py --device "$DEV" --sizes $SIZES --batches 128x128 --steps 60 \
    2>&1 | tee -a "$OUT/throughput.log"

stamp "generation" | tee "$OUT/generation.log"
timeout 90 python3 benchmarks/generation.py --device "$DEV" --checkpoint checkpoints/tinyshakespeare-lm.pt 2>&1 | tee -a "$OUT/generation.log"

stamp "time to quality, defaults and the plain reference" | tee "$OUT/ttq_defaults.log"
timeout $((2 * BUDGET + 120)) python3 benchmarks/time_to_quality.py --device "$DEV" --budgets "$BUDGET" \
    2>&1 | tee -a "$OUT/ttq_defaults.log"

stamp "time to quality, $LEVER" | tee "$OUT/ttq_lever.log"
timeout $((BUDGET + 90)) python3 benchmarks/time_to_quality.py --device "$DEV" --budgets "$BUDGET" --only charnn \
    --train-args "$LEVER" 2>&1 | tee -a "$OUT/ttq_lever.log"

stamp "done"
tar czf "$OUT/results.tgz" benchmarks/results 2>/dev/null

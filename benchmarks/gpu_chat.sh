#!/usr/bin/env bash
# Train the chat model bigger on a lent GPU, in one command under the device's 10-minute limit (issue 17:
# the built-in 1x256 model is near what it can learn on 2 CPU cores; a wider one needs a GPU). Trains
# `charnn train CORPUS --mode chat FLAGS` for MINUTES, exports it to $OUT/chitchat-chat.pt (fp16, beside
# it chitchat-chat.json), then scores it on the held-out conversations with the ranking of `charnn eval`
# (benchmarks/chat_context.py: reply bits/char with and without context, hits@1 of 20 plain, per token
# and PMI) and, if time is left, with the whole of `charnn eval` (every decoding's reply figures).
# Each part runs on even if one before it failed; logs and results go to $OUT.
#
#   OUT=/tmp/gpuchat benchmarks/gpu_chat.sh                                   # on the GPU machine
#   DEV=cpu MINUTES=0.3 FLAGS="--hidden 32" OUT=/tmp/gpuchat benchmarks/gpu_chat.sh   # dry run here
#
# Needs: python3 with torch; the chitchat dialogues at $CHAT_CORPUS (default
# .devcarry/chitchat-dialogues-v1.txt: copy it from the charnn cache, 13 MB, and carry .devcarry);
# wheels of anything missing there (platformdirs, sentencepiece) in $WHEELS (default .devcarry),
# installed to /tmp/site. The export of a 2x1024 model is about 60 MB: check `files_left_out` if it
# does not come back (the scores in $OUT/*.log still do).
set -u
DEV=${DEV:-cuda}
MINUTES=${MINUTES:-6}
FLAGS=${FLAGS:---hidden 1024 --layers 2 --batch-size 128 --lr 2e-3 --dropout 0.3}
CHAT_CORPUS=${CHAT_CORPUS:-$PWD/.devcarry/chitchat-dialogues-v1.txt}
# shellcheck source=benchmarks/gpu_env.sh
. "$(dirname "$0")/gpu_env.sh"
seconds=$(python3 -c "print(int(float('$MINUTES') * 60))")

stamp "train: $MINUTES min, $FLAGS" | tee "$OUT/train.log"
# shellcheck disable=SC2086  # FLAGS is a list of flags
timeout $((seconds + 120)) python3 -m charnn train "$CHAT_CORPUS" --mode chat --time "$seconds" --device "$DEV" \
    --name chat-gpu $FLAGS 2>&1 | tee -a "$OUT/train.log"

stamp "export" | tee "$OUT/export.log"
python3 -m charnn export chat-gpu "$OUT/chitchat-chat.pt" 2>&1 | tee -a "$OUT/export.log"

stamp "ranking and bits/char (benchmarks/chat_context.py)" | tee "$OUT/score.log"
timeout 150 python3 benchmarks/chat_context.py --device "$DEV" --corpus "$CHAT_CORPUS" \
    --checkpoint "$OUT/chitchat-chat.pt" 2>&1 | tail -4 | tee -a "$OUT/score.log"

stamp "charnn eval (every decoding)" | tee "$OUT/eval.log"
timeout 120 python3 -m charnn eval "$OUT/chitchat-chat.pt" "$CHAT_CORPUS" --device "$DEV" 2>&1 | tee -a "$OUT/eval.log"
stamp "done" | tee -a "$OUT/eval.log"
find benchmarks/results -name 'chat_context-*.json' -newer "$OUT/train.log" -exec cp {} "$OUT"/ \;

"""Padding waste of chat batches: the share of padded positions (work that teaches nothing) in the
context and reply tensors over one epoch of the built-in chat corpus, for length-bucketed batches
(what training uses) and for plainly shuffled ones.

    python benchmarks/chat_padding.py [--corpus DIALOGUES] [--tokenizer char|bpe|unigram] [--vocab-size 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save, table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=None, help="a dialogue file (default: the built-in chitchat corpus)")
    ap.add_argument("--tokenizer", default="char", choices=["char", "bpe", "unigram"])
    ap.add_argument("--vocab-size", type=int, default=1000)
    ap.add_argument("--batch-sizes", default="16,32,64")
    args = ap.parse_args()

    from charnn.config import RunSettings
    from charnn.presets import apply_presets
    from charnn.text.chat_batches import (
        BucketBatcher,
        DialogueExamples,
        fit_chat_tokenizer,
        padding_waste,
    )
    from charnn.text.dialogue import read_dialogues, split_conversations
    from charnn.training.chat_task import model_config_from_settings

    if args.corpus is None:
        from charnn.corpora.chitchat import dialogue_file

        args.corpus = str(dialogue_file())
    s = RunSettings(mode="chat", corpus=args.corpus)
    apply_presets(s)
    s.tokenizer.kind = args.tokenizer
    s.tokenizer.vocab_size = args.vocab_size if args.tokenizer != "char" else 0
    if args.tokenizer != "char":
        s.train.seq_len = 64
    conversations = read_dialogues(args.corpus)
    train, _ = split_conversations(conversations, s.train.val_fraction)
    tok = fit_chat_tokenizer(conversations, s.tokenizer)
    cfg = model_config_from_settings(s, tok)
    examples = DialogueExamples(train, tok, cfg)
    rows = []
    for b in (int(x) for x in args.batch_sizes.split(",")):
        batcher = BucketBatcher(examples, b, seed=1337)
        for label, bucketed in (("bucketed", True), ("shuffled", False)):
            w = padding_waste(examples, batcher.plan(0, bucketed=bucketed))
            rows.append({"batch": b, "batches": label, "context pad": f"{w['context']:.1%}",
                         "reply pad": f"{w['reply']:.1%}", "total pad": f"{w['total']:.1%}"})
    print(f"{args.corpus}: {len(examples)} training examples, {tok.kind} tokens, context up to "
          f"{cfg.context_turns} turns / {cfg.max_context_tokens} tokens, replies up to {cfg.max_reply_tokens}\n")
    print(table(rows, ["batch", "batches", "context pad", "reply pad", "total pad"]))
    path = save("chat_padding", {"corpus": args.corpus, "tokenizer": tok.kind, "rows": rows})
    print(f"\n(saved {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

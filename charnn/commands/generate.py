"""``charnn generate``: stream samples from a language model, with --novelty against its training text."""

from __future__ import annotations

import sys

from charnn.commands import checkpoint_arg


def cmd_generate(args) -> int:
    from charnn.config import SampleConfig
    from charnn.decoding.sampling import generate_text, validate_sample_config
    from charnn.runtime.loading import load_model

    cfg = SampleConfig(temperature=args.temp, top_k=args.top_k, top_p=args.top_p, length=args.length,
                       prime=args.prime, seed=args.seed, num_samples=args.num_samples)
    validate_sample_config(cfg)
    from charnn.runtime.device import set_cpu_threads

    set_cpu_threads()
    loaded = load_model(checkpoint_arg(args.checkpoint), "lm", args.device)
    if cfg.prime:  # refuse a bad prompt before anything reaches stdout
        from charnn.decoding.sampling import encode_prime

        encode_prime(loaded.tokenizer, cfg.prime)
    index = _novelty_index(loaded) if args.novelty else None
    out = sys.stdout
    import torch

    gen = torch.Generator(device=loaded.device)
    if cfg.seed is not None:
        gen.manual_seed(cfg.seed)
    else:
        gen.seed()
    for i in range(cfg.num_samples):
        if cfg.num_samples > 1:
            out.write(f"{'' if i == 0 else chr(10)}--- sample {i + 1} ---\n")
        out.write(cfg.prime)
        pieces = []
        for piece in generate_text(loaded.model, loaded.tokenizer, cfg, loaded.device, gen):
            out.write(piece)
            out.flush()
            pieces.append(piece)
        out.write("\n")
        if index is not None:
            _print_novelty(index, "".join(pieces))
    out.flush()
    return 0


def _novelty_index(loaded):
    from charnn.inspect.novelty import corpus_path, novelty_index

    settings = loaded.checkpoint.get("settings") or {}
    return novelty_index(corpus_path(loaded.checkpoint), settings.get("encoding", "utf-8"),
                         settings.get("errors", "strict"))


def _print_novelty(index, text: str) -> None:
    from charnn.inspect.novelty import SPAN, novelty

    result = novelty(index, text)
    print(f"novelty: {result.new_share:.1%} of {len(text):,} characters are new; "
          f"{len(result.copied)} span(s) of {SPAN}+ characters found verbatim in the training text")
    for a, b in result.copied:
        print(f"  copied [{a}:{b}] {text[a:b]!r}")
    if result.note:
        print(f"  note: {result.note}")

"""``charnn train``: flags into settings, then the training event stream reported as it comes."""

from __future__ import annotations

import os
import signal
import sys
import threading

from charnn.commands import checkpoint_arg
from charnn.errors import CharnnError


class _Stop:
    """Set by SIGINT/SIGTERM; the trainer checks it every step and saves before leaving."""

    def __init__(self):
        self.event = threading.Event()
        self.count = 0

    def is_set(self) -> bool:
        return self.event.is_set()

    def handler(self, signum, frame) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        self.event.set()
        sys.stderr.write("\ncharnn: stopping after this step and saving (press Ctrl-C again to abort)\n")


def requested_time(args) -> float | None:
    """The time budget a `charnn train` command line asks for (charnn.presets.requested_time)."""
    from charnn.presets import requested_time as asked

    return asked(args.time, args.steps, args.epochs)


# the `charnn train` flags that become settings (the rest say where and how to run)
SETTING_FLAGS = ("mode", "tokenizer", "vocab_size", "encoding", "errors", "cell", "layers", "hidden", "embedding",
                 "dropout", "tie_weights", "batch_size", "seq_len", "lr", "warmup", "weight_decay", "ema", "steps",
                 "time", "epochs", "eval_every", "sample_every", "sample_length", "patience", "val_fraction",
                 "teacher_forcing", "seed", "device", "threads", "no_bf16", "encoder", "context_dropout",
                 "label_smoothing", "generic_weight", "no_start_marker")


def settings_from_args(args):
    """Flags into a plain dict, then charnn.presets.build_settings: the CLI only parses."""
    from charnn.corpora.catalog import resolve_corpus
    from charnn.presets import build_settings

    flags = {name: getattr(args, name) for name in SETTING_FLAGS}
    flags["world"] = int(os.environ.get("WORLD_SIZE", "1"))
    if args.teacher_forcing is not None:
        from charnn.training.teacher_forcing import parse_teacher_forcing

        flags["teacher_forcing"] = str(parse_teacher_forcing(args.teacher_forcing))  # its canonical spelling
    base = _init_from(args)
    corpus = str(resolve_corpus(args.corpus, mode=args.mode))
    try:
        corpus_bytes = os.path.getsize(corpus) if args.mode == "lm" else None
    except OSError:
        corpus_bytes = None  # reported properly when the corpus is read
    return build_settings(flags, corpus, corpus_bytes, lambda: _width_probe(flags, corpus_bytes), base)


def _init_from(args):
    """The model a new run starts from (--init-from), read and checked before anything else happens."""
    if not getattr(args, "init_from", None):
        return None
    from charnn.training.init_from import read_base

    return read_base(checkpoint_arg(args.init_from), args.mode)[0]


def _width_probe(flags: dict, corpus_bytes: int | None):
    """This machine's training speed by width (charnn.presets.cpu_hidden), measured lazily."""
    from charnn.presets import LM_CPU, tokenizer_for
    from charnn.runtime.device import set_cpu_threads
    from charnn.training.probe import RateFunction

    set_cpu_threads(flags["threads"] or 0)
    vocab = tokenizer_for("lm", flags["tokenizer"], flags["vocab_size"]).vocab_size
    return RateFunction(layers=flags["layers"] or LM_CPU["layers"], vocab=vocab or 96,
                        batch=flags["batch_size"] or LM_CPU["batch_size"],
                        seq_len=flags["seq_len"] or LM_CPU["seq_len"], bf16=not flags["no_bf16"],
                        cell=flags["cell"] or "lstm")


def cmd_train(args) -> int:
    from charnn.report import EventLog, make_reporter
    from charnn.training.trainer import train_stream

    if args.tui:
        from charnn.tui import run_tui

        return run_tui(train_args=[a for a in sys.argv[2:] if a != "--tui"])
    if args.resume and args.init_from:
        raise CharnnError("--init-from starts a new run from a trained model and --resume continues one of "
                          "yours; give only one of them.")
    budget = {}
    for arg, field in (("steps", "steps"), ("time", "time_s"), ("epochs", "epochs")):
        if getattr(args, arg) is not None:
            budget[field] = getattr(args, arg)
    settings = None if args.resume else settings_from_args(args)
    asked = None if args.resume else requested_time(args)
    if asked and settings.train.time_s < asked and not (args.quiet or args.jsonl):
        print(f"charnn: {asked - settings.train.time_s:.1f} s of the {asked:g} s went to measuring this machine's "
              f"training speed, to choose the model's width", file=sys.stderr)
    stop = _Stop()
    old_int = signal.signal(signal.SIGINT, stop.handler)
    old_term = signal.signal(signal.SIGTERM, stop.handler)
    report = make_reporter(jsonl=args.jsonl, quiet=args.quiet)
    rank = int(os.environ.get("RANK", "0"))
    failed = False
    log = EventLog()
    try:
        for event in train_stream(settings, out=args.out, name=args.name, resume=args.resume,
                                  budget=budget, stop=stop):
            if rank == 0:
                log(event)
                report(event)
            if type(event).__name__ == "Done" and event.reason == "failed":
                failed = True
    except CharnnError as e:
        from charnn.training.events import Error

        report.close()
        if args.jsonl:
            report(Error(str(e)))
        if rank == 0:
            try:  # a UI following events.jsonl learns why the run ended
                log(Error(str(e)))
            except OSError:
                pass
        raise
    finally:
        report.close()
        log.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return 1 if failed else 0

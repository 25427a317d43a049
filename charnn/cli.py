"""The ``charnn`` command: argument parsing and dispatch.

Nothing heavy is imported at module level (torch, textual), so ``charnn --help``
answers at once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from charnn import __version__
from charnn.config import parse_duration
from charnn.errors import CharnnError
from charnn.presets import CHAT_DECODING

DEFAULTS_NOTE = "defaults suit a CPU; on a GPU try --hidden 1024 --batch-size 128"


def _duration(text: str) -> float:
    body = text.strip()
    try:
        seconds = -parse_duration(body[1:]) if body.startswith("-") else parse_duration(body)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90, 90s, 5m or 1h)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the time budget must be more than zero, not {text!r} (try 90, 5m or 1h)")
    return seconds


def _whole_number(text: str) -> int:
    """Parse only: each setting's range is checked once, in charnn.presets.validate_settings."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a text file or built-in corpus",
                       description="Train a stacked-LSTM language model (or, with --mode chat, a seq2seq "
                                   "chat model). Ctrl-C stops and saves; --resume continues.",
                       epilog=DEFAULTS_NOTE)
    p.add_argument("corpus", nargs="?", help="a UTF-8 text file or a built-in corpus name (see `charnn corpora`)")
    p.add_argument("--mode", choices=["lm", "chat"], default="lm", help="language model (default) or chat model")
    g = p.add_argument_group("tokens")
    g.add_argument("--tokenizer", choices=["char", "bpe", "unigram"], default=None,
                   help="char (default), or subwords: bpe (the default for --mode chat) or unigram")
    g.add_argument("--vocab-size", type=_whole_number, default=0, help="subword vocabulary size (default 1000)")
    g.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    g.add_argument("--errors", default="strict", choices=["strict", "replace", "ignore"],
                   help="what to do with undecodable bytes (default strict: stop and say where)")
    g = p.add_argument_group("model")
    g.add_argument("--init-from", metavar="MODEL",
                   help="start from a trained model instead of from scratch (a name from `charnn models`, a run "
                        "or a checkpoint file): it keeps its architecture and tokenizer and is fine-tuned on "
                        "CORPUS with a lower learning rate")
    g.add_argument("--cell", choices=["lstm", "gru", "rnn", "peephole", "cifg"], default=None, help="recurrent cell (default lstm)")
    g.add_argument("--layers", type=_whole_number, default=None)
    g.add_argument("--hidden", type=_whole_number, default=None,
                   help="LSTM width (CPU default: 128-512, the widest this machine trains on enough text "
                        "in --time, measured in about a second; GPU: 1024)")
    g.add_argument("--embedding", type=_whole_number, default=0, help="embedding size (0 = auto: the vocabulary size rounded up to 16, at most --hidden)")
    g.add_argument("--dropout", type=float, default=None)
    g.add_argument("--tie-weights", action="store_true", help="share input embedding and output weights")
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=_whole_number, default=None, help="parallel streams per step")
    g.add_argument("--seq-len", type=_whole_number, default=None, help="truncated-BPTT window in tokens (chat: longest training reply)")
    g.add_argument("--lr", type=float, default=None)
    g.add_argument("--warmup", type=_whole_number, default=None, help="warm-up steps")
    g.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW weight decay on the weight matrices (language models: 0.1; chat: 0.01)")
    g.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep a moving average of the weights and finish with it (default 0.999; "
                        "0 = off, the last weights)")
    g.add_argument("--steps", type=_whole_number, default=None, help="stop after N steps")
    g.add_argument("--time", type=_duration, default=None,
                   help="stop after this long (90, 5m, 1h; a language model also stops after 60 epochs)")
    g.add_argument("--epochs", type=float, default=None,
                   help="stop after N passes over the text (with --time: whichever comes first)")
    g.add_argument("--eval-every", type=_whole_number, default=None, help="evaluate every N steps")
    g.add_argument("--sample-every", type=_whole_number, default=None, help="sample every N steps")
    g.add_argument("--sample-length", type=_whole_number, default=None)
    g.add_argument("--patience", type=_whole_number, default=None,
                   help="stop after N evaluations without improvement (0 = never)")
    g.add_argument("--val-fraction", type=float, default=None, help="share held out for validation (0.1)")
    g.add_argument("--teacher-forcing", metavar="SCHEDULE", default=None,
                   help="chat: how often the decoder is fed the gold previous reply token rather than one it "
                        "samples itself (scheduled sampling, Bengio et al. 2015): 1 (default) always; a "
                        "RATIO in [0, 1] at every step; or SHAPE:STEPS[:FLOOR], falling from 1 to FLOOR "
                        "(default 0) by step STEPS, SHAPE linear, exponential or inverse-sigmoid, e.g. "
                        "linear:2000:0.5. Below 1 training reads replies one token at a time (slower)")
    g.add_argument("--seed", type=_whole_number, default=None)
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    _add_chat_levers(p)
    g.add_argument("--threads", type=_whole_number, default=None, help="CPU threads (default: one per core)")
    g.add_argument("--no-bf16", action="store_true",
                   help="train in fp32 (default: bf16 autocast on CUDA and on CPUs with native bf16)")
    g = p.add_argument_group("output")
    g.add_argument("--out", help="run directory (default: a new one under the data dir)")
    g.add_argument("--name", help="run name (default: corpus name and time)")
    g.add_argument("--resume", metavar="RUN", help="continue a run (name, directory or checkpoint)")
    g.add_argument("--jsonl", action="store_true", help="print events as JSON lines on stdout")
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final line")
    g.add_argument("--tui", action="store_true", help="watch this run in the TUI")


def _add_chat_levers(p) -> None:
    g = p.add_argument_group("chat models (--mode chat)")
    g.add_argument("--encoder", choices=["flat", "hred"], default=None,
                   help="flat (default): one bidirectional LSTM over the recent turns; hred: each turn read on "
                        "its own, then a context RNN over the turns (Serban et al. 2016)")
    g.add_argument("--context-dropout", type=float, default=None, metavar="P",
                   help="cut this share of training contexts to fewer of their recent turns, so a fresh chat's "
                        "first message reads like one met mid-conversation (default 0.25)")
    g.add_argument("--label-smoothing", type=float, default=None, metavar="E", help="default 0 (off)")
    g.add_argument("--generic-weight", type=float, default=None, metavar="W",
                   help="loss weight of replies said very often, such as 'Hi!' (default 1: off; 0 drops them)")
    g.add_argument("--no-start-marker", action="store_true",
                   help="do not mark contexts that open a conversation (the model then greets fresh chats)")


def _add_sampling(p) -> None:
    p.add_argument("--checkpoint", "-c", help="a model name from `charnn models`, a run directory or a checkpoint "
                                              "file (default: the latest)")
    p.add_argument("--temp", "--temperature", dest="temp", type=float, default=0.8,
                   help="sampling temperature (0 = greedy, default 0.8)")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0 = off)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same text")
    p.add_argument("--device", default="auto")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charnn",
        description="Train recurrent language models on your own text, then generate, chat and watch them learn.",
    )
    parser.add_argument("--version", action="version", version=f"charnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)

    p = sub.add_parser("generate", help="stream text from a trained model")
    _add_sampling(p)
    p.add_argument("--prime", default="", help="text the sample continues")
    p.add_argument("--length", type=int, default=500, help="tokens to generate (characters for char models)")
    p.add_argument("--num-samples", "-n", type=int, default=1)
    p.add_argument("--novelty", action="store_true",
                   help="after each sample, the share that is new and the spans of 20+ characters copied "
                        "verbatim from the model's training text (which must be on this machine)")

    p = sub.add_parser("eval", help="bits per character of a text under a model")
    p.add_argument("checkpoint", help="a model name from `charnn models`, a run directory or a checkpoint file")
    p.add_argument("text", help="text file to score (a dialogue file for chat models)")
    p.add_argument("--device", default="auto")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--errors", default="strict", choices=["strict", "replace", "ignore"])
    p.add_argument("--max-tokens", type=int, default=0, help="score at most this many tokens (0 = all)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("models", help="list trained runs, or compare some (--compare RUN RUN ...)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--compare", nargs="+", metavar="RUN",
                   help="runs side by side: the settings that differ, their scores, and their validation "
                        "curves at common points (and as a chart in a terminal)")

    sub.add_parser("corpora", help="list built-in corpora")

    p = sub.add_parser("export", help="write a small inference-only copy of a model (fp16, no optimiser)",
                       description="Write a small inference-only copy of a model (fp16, no optimiser state), "
                                   "and beside it OUT's name with .json: its size and scores, as `charnn "
                                   "models` lists them.")
    p.add_argument("checkpoint", help="checkpoint file, run directory or run name")
    p.add_argument("out", help="file to write (e.g. model.pt)")
    p.add_argument("--fp32", action="store_true", help="keep full-precision weights")

    p = sub.add_parser("chat", help="talk to a seq2seq chat model")
    _add_sampling(p)
    p.set_defaults(temp=None)  # chat's default decoding is beam search; --temp alone asks for sampling
    p.add_argument("--context", type=int, default=None, help="previous turns the model reads")
    p.add_argument("--beam", type=int, default=None,
                   help=f"beam search width (0 = sample; default {CHAT_DECODING['beam']}; --temp alone samples)")
    p.add_argument("--mmi", type=float, default=None,
                   help=f"anti-LM weight: score a reply's first tokens by log p(reply | context) - MMI x "
                        f"log p(reply | no context), against generic replies (0 = off; default {CHAT_DECODING['mmi']:g})")
    p.add_argument("--min-length", type=int, default=None,
                   help=f"no reply shorter than this many words (0 = off; default {CHAT_DECODING['min_words']})")
    p.add_argument("--max-length", type=int, default=200, help="longest reply in tokens")

    _add_inspect(sub)

    p = sub.add_parser("tui", help="open the terminal UI")
    p.add_argument("--run", help="follow a run (name or directory), or open a model from `charnn models` by name")
    return parser


# -- commands -----------------------------------------------------------------------


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


def checkpoint_arg(spec: str | None) -> str | None:
    """The file a --checkpoint (or eval's model) names; a run of the user's that hides a built-in
    model of the same name is used, with one line saying so."""
    if not spec:
        return None  # the latest model of the command's kind
    from charnn.runtime.runs import find_model

    match = find_model(spec)
    if match.notice:
        print(f"charnn: {match.notice}", file=sys.stderr)
    return str(match.path)


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


def cmd_eval(args) -> int:
    from charnn.scoring.evaluate import evaluate_file

    if args.max_tokens < 0:
        raise CharnnError("--max-tokens must be 0 (the whole text) or more.")
    result = evaluate_file(checkpoint_arg(args.checkpoint), args.text, device=args.device, encoding=args.encoding,
                           errors=args.errors, max_tokens=args.max_tokens)
    if "hits_at_1" in result and str(result.get("scored", "")).startswith("the held-out"):
        from pathlib import Path

        from charnn.runtime.runs import record_scores

        recorded = record_scores(Path(result["checkpoint"]), {"reply_bpc": result["bits_per_char"],
                                 "hits_at_1": result["hits_at_1"], "hits_at_1_pmi": result["hits_at_1_pmi"]})
        if recorded is not None:
            print(f"charnn: reply bits/char and hits@1 recorded in {recorded}", file=sys.stderr)
    if args.json:
        import json

        print(json.dumps(result))
    elif "decodings" in result:
        from charnn.scoring.evaluate import format_chat_eval

        print("\n".join(format_chat_eval(result)))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_models(args) -> int:
    import json

    from charnn import paths
    from charnn.report import PERIODIC_MARK, SCORE_LEGEND, fmt_count, score_cell
    from charnn.runtime.runs import RunRecord, bundled_model_info, bundled_models, list_runs

    if args.compare:
        return _compare_runs(args.compare, sys.stdout.isatty())
    runs = list_runs()
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=2))
        return 0
    builtins = [bundled_model_info(p) for p in bundled_models()]
    # a "from" column only when some model was fine-tuned from another
    started = max((len(r.init_from) for r in [*runs, *builtins] if r.init_from), default=0)
    width = max(started, len("from"))

    def row(r: RunRecord) -> str:
        corpus = os.path.basename(r.corpus or "")
        origin = f"  {r.init_from or '-':<{width}}" if started else ""
        return (f"{r.name:<36} {r.mode:<5} {r.tokenizer or '?':<8} {r.size:<9} "
                f"{fmt_count(r.parameters or 0):>7} {r.step or 0:>7} {score_cell(r.held_out_bpc, r.best_val_bpc):>8}"
                f" {hits(r):>11}{origin}  {corpus}")

    def hits(r: RunRecord) -> str:  # a chat model's, once `charnn eval` has measured them
        return f"{r.hits_at_1:.3f}/{r.hits_at_1_pmi or 0:.3f}" if r.hits_at_1 is not None else ""

    from_column = "  " + "from".ljust(width) if started else ""
    header = (f"{'run':<36} {'mode':<5} {'tokens':<8} {'size':<9} {'params':>7} {'steps':>7} {'val bpc':>8} "
              f"{'hits@1/pmi':>11}{from_column}  corpus")
    if runs:
        print(header)
        for r in runs:
            print(row(r))
    else:
        print("No trained runs yet; start one with `charnn train CORPUS`.", file=sys.stderr)
    if builtins:
        print(f"{chr(10) if runs else ''}built-in models ({paths.bundled_checkpoints_dir()}):")
        if not runs:
            print(header)
        for r in builtins:
            print(row(r))
    if any(score_cell(r.held_out_bpc, r.best_val_bpc).endswith(PERIODIC_MARK) for r in [*runs, *builtins]):
        print(f"\n{SCORE_LEGEND}")
    print(f"\n(runs live in {paths.runs_dir()})")
    return 0


def _compare_runs(specs: list[str], chart: bool) -> int:
    """``charnn models --compare``: a table per run, the settings that differ, the curves at common points."""
    from charnn.report import fmt_count
    from charnn.tui.braille import fmt_seconds
    from charnn.tui.run_curves import common_points, differences, find_runs, read_curve

    curves = [read_curve(r) for r in find_runs(specs)]
    width = max(len(c.name) for c in curves) + 2

    def num(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    print(f"{'run':<{width}}{'best val':>9}{'held-out':>9}{'steps':>8}{'tokens':>9}{'time':>8}")
    for c in curves:
        r = c.record
        print(f"{c.name:<{width}}{num(r.best_val_bpc):>9}{num(r.held_out_bpc):>9}{r.step or 0:>8,}"
              f"{fmt_count(c.total_tokens):>9}{fmt_seconds(c.total_seconds):>8}")
    diffs = differences(curves)
    print("\nsettings that differ:" if diffs else "\nthe runs' settings are the same")
    for key, values in diffs:
        print(f"  {key:<24}" + "  ".join(f"{c.name}={v}" for c, v in zip(curves, values, strict=True)))
    for axis, fmt in (("tokens", fmt_count), ("seconds", fmt_seconds)):
        points = common_points(curves, axis)
        label = "tokens seen" if axis == "tokens" else "training time"
        if not points:
            print(f"\nno {label} reached by every run")
            continue
        print(f"\nval bits/char at {label}\n{'':<{width}}" + "".join(f"{fmt(x):>9}" for x in points))
        for c in curves:
            print(f"{c.name:<{width}}" + "".join(f"{num(c.at(axis, x)):>9}" for x in points))
    if chart:
        _print_compare_chart(curves)
    return 0


def _print_compare_chart(curves) -> None:
    from rich.console import Console
    from rich.text import Text

    from charnn.tui import braille
    from charnn.tui.widgets.palette import PALETTE

    lines = [braille.Line(c.tokens, c.bpc, str(i), mark="●") for i, c in enumerate(curves)]
    rows = braille.chart(lines, 72, 14, x_suffix=" tokens")
    if rows is None:
        return
    console = Console(highlight=False)
    legend = Text("\nval bits/char  ")
    for i, c in enumerate(curves):
        legend.append(f"● {c.name}  ", style=PALETTE[i % len(PALETTE)])
    console.print(legend)
    for row in rows:
        text = Text()
        for piece, role in row:
            text.append(piece, style=PALETTE[int(role) % len(PALETTE)] if role.isdigit() else "dim")
        console.print(text)


def cmd_corpora(args) -> int:
    from charnn.corpora.catalog import print_catalog

    print_catalog()
    return 0


def cmd_export(args) -> int:
    from charnn.runtime.checkpoint import export_checkpoint, summary_path
    from charnn.runtime.runs import resolve_checkpoint

    out = export_checkpoint(resolve_checkpoint(checkpoint_arg(args.checkpoint)), args.out, half=not args.fp32)
    print(f"charnn: wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB) and its summary "
          f"{summary_path(out).name}", file=sys.stderr)
    return 0


def cmd_chat(args) -> int:
    from charnn.chat import run_chat_repl

    args.checkpoint = checkpoint_arg(args.checkpoint)
    return run_chat_repl(args)


def cmd_tui(args) -> int:
    from charnn.tui import run_tui

    return run_tui(run=args.run)


# -- inspect: what the network learned (charnn/inspect/ holds the logic) ----------------

SHOW_CHARS = 3000  # characters of the text coloured in the terminal; --html shows all of it


def _add_inspect(sub) -> None:
    p = sub.add_parser(
        "inspect", help="look inside a language model: surprise, units, gates, gradient flow",
        description="Colour TEXT by the model's surprise (bits per character, the figure `charnn eval` "
                    "gives) or by one unit's cell state, output or gate; find the units that track the "
                    "line position, quotes, bracket depth and more; measure gradient flow. TEXT is read "
                    "from a file when one exists at that path, from standard input when it is `-`, and "
                    "is otherwise the text itself. In a terminal the text is coloured; otherwise only "
                    "the figures are printed.")
    p.add_argument("text", metavar="TEXT", help="a file, `-` for standard input, or the text itself")
    p.add_argument("--checkpoint", "-c", action="append", default=None,
                   help="checkpoint file, run directory or run name (default: the latest language model, "
                        "else the built-in one); give several with --gradients, one line per model")
    p.add_argument("--unit", metavar="LAYER:N", help="colour by this unit (layer and unit numbered from 0)")
    p.add_argument("--signal", choices=["c", "h", "i", "f", "o", "g"], default=None,
                   help="which value of --unit: cell state c (default; h for GRU/RNN), output h, gates i f o, "
                        "candidate g")
    p.add_argument("--find", action="store_true", help="the unit finder: units that track each probe, "
                                                       "and how often each gate is saturated")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    p.add_argument("--gradients", action="store_true",
                   help="mean norm of the loss gradient w.r.t. the hidden state k steps back, k = 1..--window")
    p.add_argument("--window", type=_whole_number, default=64, help="steps back for --gradients (default 64)")
    p.add_argument("--device", default="auto")
    p.add_argument("--encoding", default="utf-8", help="encoding of a TEXT file (default utf-8)")


def cmd_inspect(args) -> int:
    import json

    from charnn.inspect.session import (
        inspect_text,
        load_for_inspection,
        parse_unit,
        read_text_arg,
        to_json,
    )
    from charnn.runtime.device import set_cpu_threads

    specs = args.checkpoint or [None]
    if len(specs) > 1 and not args.gradients:
        raise CharnnError("Several --checkpoint options go with --gradients only (one line per model).")
    text = read_text_arg(args.text, args.encoding)
    set_cpu_threads()
    if args.gradients:
        return _inspect_gradients(args, specs, text)
    loaded = load_for_inspection(specs[0], args.device)
    if args.signal and not args.unit:
        raise CharnnError("--signal chooses a value of --unit LAYER:N; give --unit too.")
    default_signal = "c" if loaded.model.config.cell not in ("gru", "rnn") else "h"
    units = (parse_unit(args.unit, args.signal or default_signal, loaded.model),) if args.unit else ()
    result = inspect_text(loaded, text, units, find=args.find)
    if args.html:
        from charnn.inspect.webpage import write_page

        write_page(args.html, result, loaded.tokenizer)
    if args.json:
        print(json.dumps(to_json(result)))
        return 0
    _print_inspection(result, sys.stdout.isatty())
    if args.html:
        print(f"page written to {args.html}")
    return 0


def _print_inspection(result, colour: bool) -> None:
    import numpy as np

    from charnn.inspect import colours

    s, text = result.surprise, result.text
    if colour:
        from rich.console import Console
        from rich.text import Text

        shown = text[:SHOW_CHARS]
        unit = next(iter(result.units.values()), None)
        rgb = (colours.signed_rgb(unit[: len(shown)]) if unit is not None
               else colours.surprise_rgb(s.char_bits[: len(shown)]))
        body = Text()
        for piece, hex_colour in colours.runs(shown, rgb):
            body.append(piece, style=f"on {hex_colour}")
        Console(highlight=False).print(body)
        if len(text) > SHOW_CHARS:
            print(f"(the first {SHOW_CHARS:,} of {len(text):,} characters; --html shows them all)")
    print(f"{s.bits_per_char:.4f} bits/char over {len(text):,} characters ({result.cell} "
          f"{result.layers}x{result.hidden}, {result.checkpoint})")
    hot = ", ".join(f"{text[a:b]!r} {bits:.1f} bits" for a, b, bits in s.hot_spans())
    print(f"most surprising: {hot}")
    for u, values in result.units.items():
        print(f"unit {u.name}: min {np.min(values):.3f}, mean {np.mean(values):.3f}, max {np.max(values):.3f}")
    f = result.findings
    if f is not None:
        print(f"\n{'probe':<16} {'unit':>9} {'signal':>6} {'r':>7}")
        for m in f.matches:
            print(f"{m.probe:<16} {f'{m.layer}:{m.unit}':>9} {m.signal:>6} {m.r:>7.3f}")
        for probe in f.probes:
            if f.best(probe) is None:
                print(f"{probe:<16} {'(constant in this text)':>24}")
        print("\ngate saturation (share of steps x units below 0.1 / above 0.9)")
        for g in f.saturation:
            print(f"layer {g.layer} {g.gate}: {g.left:6.1%} shut {g.right:6.1%} open")


def _inspect_gradients(args, specs: list, text: str) -> int:
    import json

    from charnn.inspect.gradients import gradient_flow
    from charnn.inspect.session import encode, load_for_inspection

    flows = []
    for spec in specs:
        loaded = load_for_inspection(spec, args.device)
        ids = encode(loaded.tokenizer, text)
        flows.append(gradient_flow(loaded.model, ids, window=args.window, checkpoint=str(loaded.path)))
    if args.json:
        print(json.dumps({"gradients": [{"checkpoint": g.checkpoint, "cell": g.cell, "norms": g.norms}
                                        for g in flows]}))
        return 0
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= args.window]
    print("mean |dL_t/dh_(t-k)|  " + "".join(f"{f'k={k}':>10}" for k in ks))
    for g in flows:
        print(f"{g.cell:<6} {g.checkpoint[-14:]:>14} " + "".join(f"{g.at(k) or 0.0:>10.2e}" for k in ks))
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


COMMANDS = {
    "train": cmd_train, "generate": cmd_generate, "eval": cmd_eval, "models": cmd_models,
    "corpora": cmd_corpora, "export": cmd_export, "chat": cmd_chat, "tui": cmd_tui,
}
COMMANDS["inspect"] = cmd_inspect


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args) or 0
    except CharnnError as e:
        print(f"charnn: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncharnn: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except MemoryError:
        print("charnn: out of memory; try a smaller --batch-size, --seq-len or --hidden.", file=sys.stderr)
        return 1
    except OSError as e:  # the disk or the OS said no (full disk, read-only place, too many files)
        where = f" ({e.filename})" if e.filename else ""
        print(f"charnn: {(e.strerror or str(e)).rstrip('.')}{where}.", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line for the user, the traceback on request
        if os.environ.get("CHARNN_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:200]
        print(f"charnn: unexpected error ({type(e).__name__}: {first}); run again with CHARNN_DEBUG=1 to see "
              f"where, and please report it.", file=sys.stderr)
        return 1

"""The ``charnn`` command: every command's flags, and dispatch to charnn/commands/.

Nothing heavy is imported at module level (torch, textual), so ``charnn --help``
answers at once; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from charnn import __version__
from charnn.commands.chat import cmd_chat
from charnn.commands.corpora import cmd_corpora
from charnn.commands.evaluate import cmd_eval
from charnn.commands.export import cmd_export
from charnn.commands.generate import cmd_generate
from charnn.commands.inspect import cmd_inspect
from charnn.commands.models import cmd_models
from charnn.commands.train import cmd_train
from charnn.commands.tui import cmd_tui
from charnn.config import parse_duration
from charnn.errors import CharnnError
from charnn.presets import CHAT_BEAM_GUARDS, CHAT_DECODING, CHAT_SAMPLING_GUARDS

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
                   help="cut this share of training contexts to fewer of their recent turns (none to all but one), so "
                        "a fresh chat's first message reads like one met mid-conversation and the reply without "
                        "context that --mmi takes off is learned (default 0.25)")
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
    p.add_argument("text", help="text file to score (a dialogue file for chat models), or a built-in corpus "
                                  "name (a chat model's own corpus: only the conversations it held out are scored)")
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
    p.set_defaults(temp=None)  # unset: the measured default decoding (charnn.presets.CHAT_DECODING)
    p.add_argument("--context", type=int, default=None, help="previous turns the model reads")
    p.add_argument("--beam", type=int, default=None,
                   help=f"beam search width (0 = sample; default {CHAT_DECODING['beam']}; --temp alone samples)")
    p.add_argument("--mmi", type=float, default=None,
                   help=f"anti-LM weight: score a reply's first tokens by log p(reply | context) - MMI x "
                        f"log p(reply | no context), against generic replies (0 = off; default "
                        f"{CHAT_BEAM_GUARDS['mmi']:g} for beam search, {CHAT_SAMPLING_GUARDS['mmi']:g} for sampling)")
    p.add_argument("--min-length", type=int, default=None,
                   help=f"no reply shorter than this many words (0 = off; default {CHAT_BEAM_GUARDS['min_words']} "
                        f"for beam search, {CHAT_SAMPLING_GUARDS['min_words']} for sampling)")
    p.add_argument("--samples", type=int, default=None,
                   help=f"sampling: draw this many replies and say the one the model scores best (1 = the first "
                        f"draw, streamed as it is written; default {CHAT_DECODING['samples']})")
    p.add_argument("--max-length", type=int, default=200, help="longest reply in tokens")

    _add_inspect(sub)

    p = sub.add_parser("tui", help="open the terminal UI")
    p.add_argument("--run", help="follow a run (name or directory), or open a model from `charnn models` by name")
    return parser


COMMANDS = {
    "train": cmd_train, "generate": cmd_generate, "eval": cmd_eval, "models": cmd_models,
    "corpora": cmd_corpora, "export": cmd_export, "chat": cmd_chat, "tui": cmd_tui, "inspect": cmd_inspect,
}


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

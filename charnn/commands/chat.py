"""``charnn chat``: talk to a seq2seq chat model in the terminal."""

from __future__ import annotations

from charnn.commands import checkpoint_arg


def cmd_chat(args) -> int:
    from charnn.chat import run_chat_repl

    args.checkpoint = checkpoint_arg(args.checkpoint)
    return run_chat_repl(args)

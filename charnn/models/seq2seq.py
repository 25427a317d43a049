"""A sequence-to-sequence chat model: the recent conversation in, a reply out.

Sutskever et al. 2014 (an LSTM reads the input, another writes the output and
ends it with an end-of-sequence token), conditioned on several previous turns
as in "chat with context" (Serban et al. 2015), with Luong et al. 2015 global
attention so every reply token can look back at every context token.

    context  = turn_1 <sep> turn_2 <sep> ... turn_K <sep>   (the last K turns, oldest first)
    encoder  = embedding + "turns ago" embedding -> bidirectional LSTM x encoder_layers
    decoder  = <bos> reply -> embedding -> LSTM x layers (state bridged from the encoder)
               -> attention over encoder states (general score) -> tanh(W[h; c]) -> logits

Padding is handled with masks, not packed sequences: sequences are padded on
the right, the backward direction reads each sequence reversed in place (its
real tokens first), and attention masks padded positions, so a padded
position can never change a real one's output.

With ``encoder="hred"`` the context is read hierarchically instead (Serban et al.
2016, ``charnn.models.hred``): the same word-level encoder over each turn on its
own, a context RNN over the turn vectors, the decoder started from and fed the
context state at every step, and attention over the words as above. Both read
the same flat context tensor, so decoders never ask which encoder a model has.

A context that opens a conversation starts with <start> (``start_id``; -1 in a
model trained before it, which then never sees one).

Training feeds the decoder the gold reply (teacher forcing), or, as an option,
sometimes its own sampled tokens instead (scheduled sampling, Bengio et al.
2015; ``decode_scheduled``), so it learns to go on from its own mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from charnn.config import _DictMixin
from charnn.errors import CharnnError


@dataclass
class Seq2SeqConfig(_DictMixin):
    vocab_size: int = 0
    hidden: int = 256  # decoder width; the bidirectional encoder uses hidden // 2 per direction
    layers: int = 1  # decoder layers
    encoder_layers: int = 1
    embedding: int = 0  # 0 means "same as hidden"
    dropout: float = 0.0
    tie_weights: bool = False  # share the embedding with the output layer (needs embedding == hidden)
    cell: str = "lstm"
    context_turns: int = 3  # previous turns the model was trained to read
    max_context_tokens: int = 256  # the context is cut to its last this many tokens
    max_reply_tokens: int = 160  # training replies are cut to this many tokens
    max_turn_distance: int = 8  # "turns ago" embeddings (further turns share the last)
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    sep_id: int = 3
    start_id: int = -1  # <start> opens a context that begins a conversation; -1: the model has none
    encoder: str = "flat"  # flat | hred (a checkpoint without the field is flat)

    @property
    def embedding_dim(self) -> int:
        return self.embedding or self.hidden


ENCODERS = ("flat", "hred")


class Memory(NamedTuple):
    """What the decoder reads: encoder states, their attention keys and mask, and its first state."""

    values: torch.Tensor  # B x S x 2He
    keys: torch.Tensor  # B x S x H
    mask: torch.Tensor  # B x S, True at real tokens
    init: tuple[torch.Tensor, torch.Tensor]  # layers x B x H each
    cond: torch.Tensor | None = None  # B x C, fed to the decoder with every input token (hred); None: flat

    def select(self, index: torch.Tensor) -> Memory:
        """Rows ``index`` of the batch (to expand for beams or drop finished ones)."""
        h, c = self.init
        cond = None if self.cond is None else self.cond[index]
        return Memory(self.values[index], self.keys[index], self.mask[index], (h[:, index], c[:, index]), cond)


def context_ids(turns: list[list[int]], cfg: Seq2SeqConfig, max_turns: int | None = None,
                start: bool = False) -> list[int]:
    """The model's input for a list of tokenized turns (oldest first): the last turns, each ended by <sep>,
    after <start> when ``start`` says they open the conversation (and the model knows the marker).

    A user's fresh chat is not marked: the marker stands for the greeting that opens a training
    conversation, and a fresh chat's first message should be answered, not greeted.
    """
    k = cfg.context_turns if max_turns is None else max_turns
    kept = turns[-k:] if k > 0 else []
    ids: list[int] = [cfg.start_id] if start and cfg.start_id >= 0 and len(kept) == len(turns) else []
    for turn in kept:
        ids.extend(turn)
        ids.append(cfg.sep_id)
    if not ids:
        ids = [cfg.sep_id]  # no context at all is one separator, so the encoder always has a token
    return ids[-cfg.max_context_tokens :]


def reversed_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Per row, the index that reverses the first ``length`` positions and keeps the rest (an involution)."""
    t = torch.arange(width, device=lengths.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    return torch.where(t < lengths, lengths - 1 - t, t)


class Seq2SeqModel(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.cell != "lstm":
            raise CharnnError("Chat models use LSTM cells; leave --cell at lstm.")
        if config.hidden < 2:
            raise CharnnError("--hidden must be at least 2 for a chat model.")
        if config.tie_weights and config.embedding_dim != config.hidden:
            raise CharnnError("--tie-weights needs --embedding equal to --hidden (or left at 0).")
        if config.encoder not in ENCODERS:
            raise CharnnError(f"Unknown --encoder {config.encoder!r}; use flat or hred.")
        self.config = config
        e, h = config.embedding_dim, config.hidden
        he = max(1, h // 2)
        self.embed = nn.Embedding(config.vocab_size, e)
        self.turn_embed = nn.Embedding(config.max_turn_distance, e)
        self.drop = nn.Dropout(config.dropout)
        self.enc_fwd = nn.ModuleList()
        self.enc_bwd = nn.ModuleList()
        for i in range(config.encoder_layers):
            size_in = e if i == 0 else 2 * he
            self.enc_fwd.append(nn.LSTM(size_in, he, batch_first=True))
            self.enc_bwd.append(nn.LSTM(size_in, he, batch_first=True))
        self.hred = None
        cond = 0
        if config.encoder == "hred":
            from charnn.models.hred import ContextReader

            self.hred = ContextReader(2 * he)
            cond = 2 * he
        self.bridge = nn.Linear(2 * he, 2 * config.layers * h)
        self.dec = nn.LSTM(e + cond, h, num_layers=config.layers, batch_first=True,
                           dropout=config.dropout if config.layers > 1 else 0.0)
        self.attn_key = nn.Linear(2 * he, h, bias=False)  # Luong "general" score: h_t . W v_s
        self.combine = nn.Linear(h + 2 * he, h)
        self.head = nn.Linear(h, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # unit-variance embeddings, as in the language model: on chitchat 2.04 vs 2.33 held-out bits/char
        # after 600 steps (std 0.1); tied ones double as output weights, where that scale saturates the softmax
        nn.init.normal_(self.embed.weight, std=0.05 if self.config.tie_weights else 1.0)
        nn.init.normal_(self.turn_embed.weight, std=0.1)
        nn.init.zeros_(self.head.bias)
        # forget-gate bias of 1 (Jozefowicz et al. 2015), as in the language model
        lstms = [*self.enc_fwd, *self.enc_bwd, self.dec] + ([self.hred.rnn] if self.hred is not None else [])
        for lstm in lstms:
            hs = lstm.hidden_size
            for name, p in lstm.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[hs : 2 * hs].fill_(1.0)
                elif name.startswith("bias_hh"):
                    with torch.no_grad():
                        p[hs : 2 * hs].fill_(0.0)

    # -- encoder --------------------------------------------------------------
    def embed_context(self, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token embeddings plus "turns ago" embeddings (separators at or after a token, in the real ones)."""
        cfg = self.config
        is_sep = ((context == cfg.sep_id) & mask).long()
        ago = is_sep.flip(1).cumsum(1).flip(1).clamp(max=cfg.max_turn_distance - 1)
        return self.drop(self.embed(context) + self.turn_embed(ago))

    def read_words(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The bidirectional word encoder over right-padded ``x`` (B x S x E): B x S x 2He."""
        rev = reversed_index(lengths, x.size(1)).unsqueeze(-1)
        for fwd, bwd in zip(self.enc_fwd, self.enc_bwd, strict=True):
            out_f, _ = fwd(x)
            out_b, _ = bwd(x.gather(1, rev.expand(-1, -1, x.size(-1))))
            out_b = out_b.gather(1, rev.expand(-1, -1, out_b.size(-1)))
            x = self.drop(torch.cat([out_f, out_b], dim=-1))
        return x

    def encode(self, context: torch.Tensor, lengths: torch.Tensor) -> Memory:
        """``context`` B x S right-padded ids, ``lengths`` B (each at least 1)."""
        cfg = self.config
        b, s = context.shape
        mask = torch.arange(s, device=context.device).unsqueeze(0) < lengths.unsqueeze(1)
        x = self.embed_context(context, mask)
        cond = None
        if self.hred is not None:
            from charnn.models.hred import read_hierarchically

            values, summary = read_hierarchically(self, context, x, mask)
            cond = summary
        else:
            values = self.read_words(x, lengths)
            he = values.size(-1) // 2
            last = (lengths - 1).clamp(min=0).view(b, 1, 1).expand(-1, 1, he)
            summary = torch.cat([values[:, :, :he].gather(1, last).squeeze(1), values[:, 0, he:]], dim=-1)
        init = torch.tanh(self.bridge(summary)).view(b, 2, cfg.layers, cfg.hidden).permute(1, 2, 0, 3)
        return Memory(values, self.attn_key(values), mask, (init[0].contiguous(), init[1].contiguous()), cond)

    # -- decoder --------------------------------------------------------------
    def decode(self, memory: Memory, reply_in: torch.Tensor, state=None):
        """Logits (B x T x V) for each next token of ``reply_in`` (B x T), and the decoder state after it."""
        logits, state, _ = self.decode_with_attention(memory, reply_in, state)
        return logits, state

    def decode_with_attention(self, memory: Memory, reply_in: torch.Tensor, state=None):
        """``decode``'s logits and state, and its attention over the context (B x T x S, rows sum to 1)."""
        x = self.drop(self.embed(reply_in))
        if memory.cond is not None:
            x = torch.cat([x, memory.cond.unsqueeze(1).expand(-1, x.size(1), -1).to(x.dtype)], dim=-1)
        out, state = self.dec(x, memory.init if state is None else state)
        scores = torch.bmm(out, memory.keys.transpose(1, 2))
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores.float(), dim=-1).to(out.dtype)
        ctx = torch.bmm(attn, memory.values)
        h = torch.tanh(self.combine(torch.cat([out, ctx], dim=-1)))
        return self.head(self.drop(h)), state, attn

    def decode_scheduled(self, memory: Memory, reply_in: torch.Tensor, teacher_forcing: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (B x T x V) for ``reply_in`` read one position at a time, where each example's input at
        each position after the first is, with probability ``1 - teacher_forcing``, a token sampled from
        the model's own prediction there instead of the gold one (scheduled sampling, Bengio et al. 2015).

        Sampled from the softmax rather than argmax, as in the paper and as replies are generated; detached,
        since a sample has no gradient. Padded positions keep their pad input: they come after every real
        one, so nothing fed there can reach a real position's output.
        """
        state = memory.init
        pad = self.config.pad_id
        b, t = reply_in.shape
        if t > 1:  # one draw per example and position (the first input is always <bos>)
            own = torch.rand(b, t - 1, generator=generator, device=reply_in.device) >= teacher_forcing
            own &= reply_in[:, 1:] != pad
        steps = []
        token = reply_in[:, :1]
        for i in range(t):
            logits, state = self.decode(memory, token, state)
            steps.append(logits)
            if i + 1 < t:
                with torch.no_grad():
                    probs = torch.softmax(logits[:, 0].float(), dim=-1)
                    sampled = torch.multinomial(probs, 1, generator=generator)
                token = torch.where(own[:, i : i + 1], sampled, reply_in[:, i + 1 : i + 2])
        return torch.cat(steps, dim=1)

    def forward(
        self,
        context: torch.Tensor,
        lengths: torch.Tensor,
        reply_in: torch.Tensor,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for ``reply_in``; with ``targets`` also the mean loss over non-pad targets.

        Teacher-forced (the whole reply at once) when ``teacher_forcing`` is 1; below 1, scheduled sampling
        (``decode_scheduled``), one position at a time and so several times slower.
        """
        memory = self.encode(context, lengths)
        if teacher_forcing >= 1.0:
            logits, _ = self.decode(memory, reply_in)
        else:
            logits = self.decode_scheduled(memory, reply_in, teacher_forcing, generator)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=self.config.pad_id)
        return logits, loss

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

"""The chat task: what the trainer needs to train a seq2seq model on dialogues.

It answers the same questions as ``LMTask`` (the loss of step N, the
validation loss, a sample to show, its checkpoint state), so the one trainer
serves both. Examples are (the previous K turns, the next turn); the held-out
examples are those of the last ``val_fraction`` of the conversations.

Batches are bucketed by length: each epoch the examples are sorted by context
length (with a little noise so batches differ between epochs), cut into groups
of a few dozen batches, sorted by reply length within a group, and the batches
shuffled. The batch of step N is a pure function of N and the seed, so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from charnn.config import RunSettings, TokenizerConfig
from charnn.errors import CharnnError
from charnn.models.seq2seq import SPECIALS, Seq2SeqConfig, Seq2SeqModel
from charnn.runtime.device import bf16_autocast
from charnn.text.dialogue import Conversation, read_dialogues, split_conversations
from charnn.text.tokenizers import CharTokenizer, SentencePieceTokenizer, Tokenizer
from charnn.training.teacher_forcing import parse_teacher_forcing

LN2 = math.log(2.0)
GROUP_BATCHES = 32  # batches per length-sorted group
EVAL_BATCH = 64
# a chat token costs several LM tokens to score (its context is read too), so evaluations read at most
# this many characters of held-out replies
MAX_EVAL_CHARS = 131072
EVAL_REPLY_TOKENS = 1024  # held-out replies are scored whole up to this length (training cuts them shorter)


def fit_chat_tokenizer(conversations: Sequence[Conversation], tok: TokenizerConfig) -> Tokenizer:
    """A tokenizer for the turns' text with the chat specials (<pad>, <bos>, <eos>, <sep>)."""
    if tok.kind == "char":
        return CharTokenizer.fit((t for turns in conversations for t in turns), SPECIALS)
    if tok.vocab_size < 2:
        raise CharnnError("--vocab-size must be at least 2 for a subword tokenizer.")
    chunks = ("\n".join(turns) + "\n" for turns in conversations)
    return SentencePieceTokenizer.fit(chunks, tok.kind, tok.vocab_size, SPECIALS)


def encode_turn(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Ids of one turn; characters a char tokenizer never saw are dropped rather than refused."""
    unknown = tokenizer.unknown_chars(text)
    if unknown:
        text = "".join(c for c in text if c not in set(unknown))
    if tokenizer.kind != "char":  # a literal "<eos>" in the text must not become the real one
        for name in SPECIALS:
            text = text.replace(name, "")
    return tokenizer.encode_array(text)


def encode_turns(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All turns at once (much faster than one by one): their ids end to end, and each turn's length."""
    if not texts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    if tokenizer.kind == "char":
        try:  # one id per character: the lengths are the texts' lengths
            return tokenizer.encode_array("".join(texts)), np.fromiter(map(len, texts), np.int64, len(texts))
        except CharnnError:
            pass  # characters it never saw: drop them turn by turn below
    elif hasattr(tokenizer, "sp"):
        clean = list(texts)
        for name in SPECIALS:
            clean = [t.replace(name, "") if name in t else t for t in clean]
        pieces = tokenizer.sp.encode(clean)
        lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
        flat = np.fromiter((i for p in pieces for i in p), np.int32, int(lengths.sum()))
        return flat, lengths
    pieces = [encode_turn(tokenizer, t) for t in texts]
    return np.concatenate(pieces), np.fromiter(map(len, pieces), np.int64, len(pieces))


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    try:
        return {f"{name[1:-1]}_id": tokenizer.special_id(name) for name in SPECIALS}
    except (KeyError, ValueError):
        raise CharnnError("This tokenizer has no chat tokens (<pad>, <bos>, <eos>, <sep>); "
                          "it belongs to a language model, not a chat model.") from None


class DialogueExamples:
    """Tokenized turns in one flat array, and the examples as (first context turn, reply turn) indices."""

    def __init__(self, conversations: Sequence[Conversation], tokenizer: Tokenizer, cfg: Seq2SeqConfig,
                 max_reply_tokens: int | None = None):
        self.cfg = cfg
        max_reply = max_reply_tokens or cfg.max_reply_tokens
        texts, firsts = [], []
        for turns in conversations:
            n = len(texts)
            firsts.extend(n + max(0, i - cfg.context_turns) for i in range(len(turns)))
            texts.extend(turns)
        ids, self.turn_len = encode_turns(tokenizer, texts)
        self.ids = ids.astype(np.uint16 if tokenizer.vocab_size <= 65535 else np.int32)
        self.turn_start = np.concatenate([[0], np.cumsum(self.turn_len)[:-1]]).astype(np.int64)
        self.first = np.asarray(firsts, dtype=np.int64)
        self.reply = np.arange(len(texts), dtype=np.int64)  # every turn is a reply to those before it
        # context: each turn and its <sep>, cut to the most recent max_context_tokens; never empty
        csum = np.concatenate([[0], np.cumsum(self.turn_len + 1)])
        ctx = csum[self.reply] - csum[self.first]
        self.ctx_len = np.clip(ctx, 1, cfg.max_context_tokens)
        # decoder input: <bos> + reply (cut to max_reply_tokens); targets: reply + <eos> when whole
        self.rep_len = np.minimum(self.turn_len[self.reply], max_reply) + 1
        self.whole = self.turn_len[self.reply] <= max_reply
        # characters of each example's targets: the reply (<eos> has none), or its first tokens when cut
        char_lengths = tokenizer.char_lengths()
        cum = np.concatenate([[0.0], np.cumsum(char_lengths[self.ids.astype(np.int64)])])
        starts = self.turn_start[self.reply]
        self.chars = cum[starts + self.rep_len - self.whole] - cum[starts]
        self.eos_cut = int((~self.whole).sum())

    def __len__(self) -> int:
        return len(self.reply)

    def target_tokens(self, index=None) -> int:
        return int(self.rep_len.sum() if index is None else self.rep_len[index].sum())

    def reply_ids(self, i: int) -> np.ndarray:
        j = self.reply[i]
        return self.ids[self.turn_start[j] : self.turn_start[j] + self.turn_len[j]]

    def context_of(self, i: int) -> list[np.ndarray]:
        return [self.ids[self.turn_start[j] : self.turn_start[j] + self.turn_len[j]]
                for j in range(self.first[i], self.reply[i])]

    def batch(self, index: np.ndarray, drop_context: bool = False) -> tuple[np.ndarray, ...]:
        """Context (B x S), lengths (B), decoder input (B x T) and targets (B x T), all int64, pad 0-filled."""
        cfg = self.cfg
        b = len(index)
        ctx_len = np.ones(b, dtype=np.int64) if drop_context else self.ctx_len[index]
        s, t = int(ctx_len.max()), int(self.rep_len[index].max())
        ctx = np.full((b, s), cfg.pad_id, dtype=np.int64)
        rin = np.full((b, t), cfg.pad_id, dtype=np.int64)
        tgt = np.full((b, t), cfg.pad_id, dtype=np.int64)
        for row, i in enumerate(index):
            if drop_context:
                ctx[row, 0] = cfg.sep_id
            else:
                parts = []
                for j in range(self.first[i], self.reply[i]):
                    st = self.turn_start[j]
                    parts.append(self.ids[st : st + self.turn_len[j]])
                    parts.append(np.array([cfg.sep_id]))
                c = np.concatenate(parts)[-cfg.max_context_tokens :] if parts else np.array([cfg.sep_id])
                ctx[row, : len(c)] = c
            st, n = self.turn_start[self.reply[i]], self.rep_len[i] - 1
            rin[row, 0] = cfg.bos_id
            rin[row, 1 : n + 1] = self.ids[st : st + n]
            if self.whole[i]:
                tgt[row, :n] = self.ids[st : st + n]
                tgt[row, n] = cfg.eos_id
            else:  # a reply cut short has no end: its last target is the next token, not <eos>
                tgt[row, : n + 1] = self.ids[st : st + n + 1]
        return ctx, ctx_len, rin, tgt


class BucketBatcher:
    """Length-bucketed batches of examples, a fresh shuffle each epoch, a pure function of the step."""

    def __init__(self, examples: DialogueExamples, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise CharnnError(f"--batch-size {batch_size} must be divisible by the {world} processes.")
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        self.windows = max(1, math.ceil(len(examples) / batch_size))  # batches per epoch
        self._plan_epoch = -1
        self._plan: list[np.ndarray] = []

    def plan(self, epoch: int, bucketed: bool = True) -> list[np.ndarray]:
        ex = self.examples
        rng = np.random.default_rng([self.seed, epoch])
        n, b = len(ex), self.batch_size
        if not bucketed:
            order = rng.permutation(n)
            return [order[i : i + b] for i in range(0, n, b)]
        order = np.argsort(ex.ctx_len + rng.uniform(0, 4, n), kind="stable")
        batches = []
        group = b * GROUP_BATCHES
        for g in range(0, n, group):
            chunk = order[g : g + group]
            chunk = chunk[np.argsort(ex.rep_len[chunk] + rng.uniform(0, 1, len(chunk)), kind="stable")]
            batches.extend(chunk[i : i + b] for i in range(0, len(chunk), b))
        rng.shuffle(batches)
        return batches

    def global_batch(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.windows)
        if epoch != self._plan_epoch:
            self._plan, self._plan_epoch = self.plan(epoch), epoch
        return self._plan[k % len(self._plan)]

    def local_batch(self, step: int) -> np.ndarray:
        batch = self.global_batch(step)
        return batch[self.rank :: self.world] if self.world > 1 else batch

    def epoch(self, step: int) -> float:
        return step / self.windows


def padding_waste(examples: DialogueExamples, batches: Sequence[np.ndarray]) -> dict[str, float]:
    """Share of padded positions in the context, reply and both, over ``batches``."""
    real_c = real_r = pad_c = pad_r = 0
    for idx in batches:
        c, r = examples.ctx_len[idx], examples.rep_len[idx]
        real_c += int(c.sum())
        real_r += int(r.sum())
        pad_c += int(c.max()) * len(idx)
        pad_r += int(r.max()) * len(idx)
    return {
        "context": 1 - real_c / max(pad_c, 1),
        "reply": 1 - real_r / max(pad_r, 1),
        "total": 1 - (real_c + real_r) / max(pad_c + pad_r, 1),
    }


def model_config_from_settings(settings: RunSettings, tokenizer: Tokenizer) -> Seq2SeqConfig:
    from charnn.presets import CHAT_DEFAULTS

    m, t = settings.model, settings.train
    return Seq2SeqConfig(
        vocab_size=tokenizer.vocab_size, hidden=m.hidden, layers=m.layers,
        encoder_layers=CHAT_DEFAULTS.get("encoder_layers", 1), embedding=m.embedding,
        dropout=m.dropout, tie_weights=m.tie_weights, cell=m.cell,
        context_turns=CHAT_DEFAULTS.get("context_turns", 3),
        max_reply_tokens=t.seq_len, max_context_tokens=2 * t.seq_len,
        **special_ids(tokenizer),
    )


class ChatTask:
    """The ``Task`` (charnn.training.task) of a seq2seq chat model."""

    kind = "chat"

    def __init__(self, settings: RunSettings, device: torch.device, rank: int = 0, world: int = 1,
                 tokenizer: Tokenizer | None = None, model_config: dict | None = None):
        from charnn.text.corpus import check_readable, hash_file

        self.settings = settings
        self.device = device
        self.notices: list[str] = []
        tc = settings.train
        path = check_readable(settings.corpus)
        self.corpus_sha256 = hash_file(path).sha256
        conversations = read_dialogues(path, settings.encoding, settings.errors)
        train_convs, val_convs = split_conversations(conversations, tc.val_fraction)
        if not val_convs:
            raise CharnnError(f"{path} has only {len(conversations)} conversation(s); a chat model needs at "
                              f"least two (one is held out to measure it), separated by a blank line.")
        self.tokenizer = tokenizer or fit_chat_tokenizer(conversations, settings.tokenizer)
        if model_config:
            cfg = Seq2SeqConfig.from_dict(model_config)
        else:
            cfg = model_config_from_settings(settings, self.tokenizer)
        cfg.vocab_size = self.tokenizer.vocab_size
        self.model_config = cfg
        self.train_examples = DialogueExamples(train_convs, self.tokenizer, cfg)
        self.val_examples = DialogueExamples(val_convs, self.tokenizer, cfg, EVAL_REPLY_TOKENS)
        b = min(tc.batch_size, len(self.train_examples))
        b -= b % world
        if b < 1:
            raise CharnnError(f"There are too few training examples ({len(self.train_examples)}) to split "
                              f"across {world} processes.")
        if b != tc.batch_size:
            self.notices.append(f"Few examples: using --batch-size {b}.")
            tc.batch_size = b
        self.batcher = BucketBatcher(self.train_examples, b, tc.seed, rank, world)
        self.rank, self.world = rank, world
        ex = self.train_examples
        self.train_chars_per_token = float(ex.chars.sum() / max(ex.target_tokens(), 1))
        self.tokens_per_step = int(ex.rep_len[self.batcher.global_batch(0)].sum())
        waste = padding_waste(ex, self.batcher.plan(0))
        self.notices.append(
            f"{len(conversations)} conversations: {len(ex)} training and {len(self.val_examples)} held-out "
            f"replies, each read with up to {cfg.context_turns} previous turns; batches bucketed by length "
            f"({waste['total']:.0%} padding)."
        )
        if ex.eos_cut:
            self.notices.append(f"{ex.eos_cut} training replies are longer than {cfg.max_reply_tokens} tokens "
                                f"and are cut (--seq-len sets the limit).")
        self.schedule = parse_teacher_forcing(tc.teacher_forcing)
        if not self.schedule.always:
            self.notices.append(f"Training with {self.schedule.describe()} (--teacher-forcing "
                                f"{self.schedule}); evaluation stays teacher-forced.")
        # the ratio of the last training step, for progress displays; None under plain teacher forcing
        self.teacher_forcing: float | None = None if self.schedule.always else self.schedule.ratio(0)
        self.model = Seq2SeqModel(cfg).to(device)
        self._sample_example = _pick_sample_example(self.val_examples)

    # -- training -------------------------------------------------------------
    def _tensors(self, examples: DialogueExamples, index: np.ndarray, drop_context: bool = False):
        arrays = examples.batch(index, drop_context)
        return [torch.from_numpy(a).to(self.device, non_blocking=True) for a in arrays]

    def train_loss(self, model, step: int) -> torch.Tensor:
        index = self.batcher.local_batch(step)
        self.tokens_per_step = int(self.train_examples.rep_len[self.batcher.global_batch(step)].sum())
        ctx, lengths, rin, tgt = self._tensors(self.train_examples, index)
        ratio = self.schedule.ratio(step)
        if not self.schedule.always:
            self.teacher_forcing = ratio
        if ratio >= 1.0:
            _, loss = model(ctx, lengths, rin, tgt)
        else:  # the model's own samples at a step are a function of the step, so a resumed run redraws them
            gen = torch.Generator(device=self.device)
            gen.manual_seed(int(np.random.SeedSequence([self.settings.train.seed, step, self.rank])
                                .generate_state(1)[0]))
            _, loss = model(ctx, lengths, rin, tgt, teacher_forcing=ratio, generator=gen)
        return loss

    def teacher_forcing_at(self, step: int) -> float:
        """The teacher-forcing ratio training step ``step`` uses (1 = the gold reply at every position)."""
        return self.schedule.ratio(step)

    def shrink_batch(self) -> int | None:
        """Halve the batch after running out of memory; None when already at one example per rank."""
        b = self.batcher.batch_size // 2
        b -= b % self.world
        if b < self.world:
            return None
        self.batcher = BucketBatcher(self.train_examples, b, self.settings.train.seed, self.rank, self.world)
        self.settings.train.batch_size = b
        return b

    @property
    def windows(self) -> int:
        return self.batcher.windows

    def check_batch_fits(self) -> None:
        pass  # batches vary in size; running out of memory halves them (shrink_batch)

    def epoch(self, step: int) -> float:
        return self.batcher.epoch(step)

    def bpc(self, nats_per_token: float, chars_per_token: float | None = None) -> float:
        cpt = chars_per_token or self.train_chars_per_token
        return nats_per_token / LN2 / max(cpt, 1e-9)

    # -- evaluation -----------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, max_tokens: int, drop_context: bool = False, final: bool = False) -> tuple[float, float]:
        """Held-out reply loss (nats/token) and bits per character of the first ``max_tokens`` reply characters
        (every reply is scored on its own, so a closing score, ``final``, is scored the same way)."""
        max_chars = min(max_tokens or MAX_EVAL_CHARS, MAX_EVAL_CHARS)
        return score_examples(model, self.val_examples, self.device, max_chars, drop_context,
                              self.settings.train.bf16)

    def sample(self, model, step: int, length: int, seed: int) -> str:
        from charnn.chat import generate_reply

        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed + step)
        i = self._sample_example
        turns = [self.tokenizer.decode(t.tolist()) for t in self.val_examples.context_of(i)]
        was_training = model.training
        model.eval()
        try:
            reply = "".join(generate_reply(model, self.tokenizer, turns, max_length=length, temperature=0.8,
                                           generator=gen, device=self.device))
        finally:
            model.train(was_training)
        return format_exchange(turns, reply)

    # -- checkpoint state -------------------------------------------------------
    def state_dict(self) -> dict:
        return {}  # the batch of a step is a function of the step and the seed

    def load_state_dict(self, state: dict) -> None:
        pass

    def summary(self) -> dict:
        return {
            "train_tokens": self.train_examples.target_tokens(),
            "val_tokens": self.val_examples.target_tokens(),
            "train_examples": len(self.train_examples),
            "val_examples": len(self.val_examples),
            "corpus_sha256": self.corpus_sha256,
        }


def eval_subset(examples: DialogueExamples, max_chars: int) -> np.ndarray:
    """The first examples (in file order) whose replies hold ``max_chars`` characters (0: all).

    Counted in characters, not tokens, so char and subword models are scored on the same replies.
    """
    if not max_chars:
        return np.arange(len(examples))
    n = int(np.searchsorted(np.cumsum(examples.chars), max_chars, side="right"))
    return np.arange(max(1, min(n, len(examples))))


@torch.no_grad()
def reply_losses(model, examples: DialogueExamples, device, max_chars: int = 0, drop_context: bool = False,
                 bf16: bool = True, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the first ``max_chars`` characters' worth of replies (0: all): their indices (file order), each
    reply's summed loss in nats and its token count; ``drop_context`` scores them with no context at all."""
    subset = eval_subset(examples, max_chars)
    order = np.argsort(examples.ctx_len[subset] + examples.rep_len[subset], kind="stable")  # little padding
    autocast = bf16_autocast(device, bf16)
    nats = np.zeros(len(subset))
    tokens = np.zeros(len(subset), dtype=np.int64)
    pad = examples.cfg.pad_id
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(subset), batch_size):
            rows = order[i : i + batch_size]
            ctx, lengths, rin, tgt = (torch.from_numpy(a).to(device)
                                      for a in examples.batch(subset[rows], drop_context))
            with autocast:
                logits, _ = model(ctx, lengths, rin)
            loss = F.cross_entropy(logits.transpose(1, 2).float(), tgt, ignore_index=pad, reduction="none")
            nats[rows] = loss.sum(1).double().cpu().numpy()
            tokens[rows] = (tgt != pad).sum(1).cpu().numpy()
    finally:
        model.train(was_training)
    return subset, nats, tokens


def score_examples(model, examples: DialogueExamples, device, max_chars: int = 0, drop_context: bool = False,
                   bf16: bool = True, batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(nats per token, bits per character) of the replies of ``examples`` (see ``reply_losses``)."""
    subset, nats, tokens = reply_losses(model, examples, device, max_chars, drop_context, bf16, batch_size)
    total = float(nats.sum())
    return total / max(int(tokens.sum()), 1), total / LN2 / max(float(examples.chars[subset].sum()), 1e-9)


def _pick_sample_example(examples: DialogueExamples) -> int:
    """A fixed held-out example to show samples for: the first with two or more turns of context."""
    has_context = np.nonzero(examples.reply - examples.first >= 2)[0]
    return int(has_context[0]) if len(has_context) else 0


def format_exchange(turns: Sequence[str], reply: str, width: int = 80) -> str:
    """'… earlier turn / last turn -> reply' on one line, long turns shortened from the left."""
    shown = [t if len(t) <= width else "…" + t[-width:] for t in turns] or ["(no context)"]
    return " / ".join(shown) + " -> " + reply

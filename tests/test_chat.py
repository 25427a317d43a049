"""Chat end to end: training through the shared trainer, decoding, the session, the REPL, eval, checkpoints."""

from __future__ import annotations

import copy
import io
import json
import math

import pytest
import torch

from charnn.chat import ChatSession
from charnn.cli import main
from charnn.decoding.replies import RepetitionGuard, generate_reply
from charnn.errors import CharnnError
from charnn.runtime.loading import load_model
from tests.test_seq2seq import write_synthetic

PLAIN = {"mmi": 0.0, "min_words": 0}  # the decoding guards off: exact replies of the toy model
CHAT_ARGS = ["--mode", "chat", "--tokenizer", "char", "--layers", "1", "--hidden", "64", "--batch-size", "16", "--seq-len", "32",
             "--threads", "1", "--sample-length", "20", "--lr", "1e-2", "--warmup", "10",
             "--context-dropout", "0"]  # the answer is three turns back: every example needs its whole context


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    """A tiny chat model trained on dialogues where the last reply repeats the first turn."""
    root = tmp_path_factory.mktemp("chat")
    corpus = write_synthetic(root / "likes.txt", n=300)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARNN_HOME", str(root / "home"))
        err = io.StringIO()
        mp.setattr("sys.stderr", err)
        code = main(["train", str(corpus), *CHAT_ARGS, "--steps", "300", "--eval-every", "150",
                     "--out", str(root / "run")])
    assert code == 0, err.getvalue()
    return {"corpus": corpus, "run": root / "run", "log": err.getvalue(), "ckpt": root / "run" / "best.pt"}


@pytest.fixture(scope="module")
def loaded(chat_run):
    return load_model(str(chat_run["ckpt"]), "chat", "cpu")


def test_chat_training_reports_progress_and_samples_a_reply_to_a_held_out_context(chat_run):
    log = chat_run["log"]
    assert "| chat |" in log and "conversations:" in log and "padding" in log
    assert "sample at step 150" in log and " -> " in log
    assert "done (budget) at step 300" in log
    info = json.loads((chat_run["run"] / "run.json").read_text())
    assert info["mode"] == "chat" and info["step"] == 300


def test_chat_checkpoint_round_trips(chat_run, loaded):
    again = load_model(str(chat_run["run"]), "chat", "cpu")
    assert loaded.kind == "chat" and loaded.model.config.to_dict() == loaded.checkpoint["model_config"]
    assert loaded.tokenizer.to_state() == again.tokenizer.to_state()
    ctx, lengths, rin = torch.tensor([[5, 6, 3]]), torch.tensor([3]), torch.tensor([[1, 7, 8]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ctx, lengths, rin)[0], again.model(ctx, lengths, rin)[0])


def test_resumed_chat_training_matches_an_uninterrupted_run(tmp_path, capsys):
    corpus = write_synthetic(tmp_path / "d.txt", n=60)
    common = [str(corpus), *CHAT_ARGS, "--eval-every", "1000"]
    assert main(["train", *common, "--steps", "8", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *common, "--steps", "4", "--out", str(tmp_path / "split")]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "8"]) == 0
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert a["history"]["train_loss"] == pytest.approx(b["history"]["train_loss"], rel=1e-5)
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-6), name


def test_generate_on_a_chat_checkpoint_says_it_is_the_wrong_kind(chat_run, capsys):
    assert main(["generate", "-c", str(chat_run["ckpt"]), "--length", "5"]) == 2
    assert "is a chat model, not a language model; use it with charnn chat" in capsys.readouterr().err


def test_replies_depend_on_what_was_said_before(loaded):
    answers = {}
    for thing in ("cats", "hats", "figs"):
        session = ChatSession(loaded, temperature=0.0, max_length=20, **PLAIN)
        session.reply(f"{thing} please")
        answers[thing] = session.reply("what?")
    assert answers == {"cats": "cats", "hats": "hats", "figs": "figs"}


def test_beam_of_one_is_greedy(loaded):
    model, tok = loaded.model, loaded.tokenizer
    for turns in (["dogs please", "ok", "what?"], ["what"], [], ["please", "ok ok ok"]):
        greedy = "".join(generate_reply(model, tok, turns, temperature=0.0, max_length=30))
        assert "".join(generate_reply(model, tok, turns, beam=1, max_length=30)) == greedy


def test_beam_agrees_with_greedy_on_a_peaked_model(loaded):
    model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        model.head.weight.mul_(30.0)
        model.head.bias.mul_(30.0)
    tok = loaded.tokenizer
    for turns in (["eggs please", "ok", "what?"], ["boats please"], ["zzz"]):
        greedy = "".join(generate_reply(model, tok, turns, temperature=0.0, max_length=25, repetition_guard=False))
        beam = "".join(generate_reply(model, tok, turns, beam=4, max_length=25, repetition_guard=False))
        assert beam == greedy


def test_replies_stop_at_the_end_token_and_at_the_maximum_length(loaded):
    model, tok = copy.deepcopy(loaded.model), loaded.tokenizer
    cfg = model.config
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.zero_()
        model.head.bias[cfg.eos_id] = 50.0
    assert "".join(generate_reply(model, tok, ["hi"], temperature=1.0)) == ""
    assert "".join(generate_reply(model, tok, ["hi"], beam=3)) == ""
    with torch.no_grad():
        model.head.bias[cfg.eos_id] = 0.0
        model.head.bias[tok.encode("a")[0]] = 50.0
    reply = "".join(generate_reply(model, tok, ["hi"], temperature=0.0, max_length=7, repetition_guard=False))
    assert reply == "aaaaaaa"
    assert len("".join(generate_reply(model, tok, ["hi"], beam=2, max_length=7, repetition_guard=False))) == 7


def test_the_repetition_guard_bans_a_repeated_run_of_tokens(loaded):
    guard = RepetitionGuard(3)
    for t in (1, 2, 3, 1, 2):
        guard.add(t)
    assert guard.banned() == {3}
    model, tok = copy.deepcopy(loaded.model), loaded.tokenizer
    with torch.no_grad():
        model.head.bias.zero_()
        model.head.weight.zero_()
        model.head.bias[tok.encode("a")[0]] = 50.0
        model.head.bias[tok.encode("b")[0]] = 40.0
    reply = "".join(generate_reply(model, tok, ["hi"], temperature=0.0, max_length=40))
    assert "a" * 25 not in reply and reply.startswith("a" * 24 + "b")  # 24 characters may not repeat


def test_sampling_is_reproducible_with_a_seed(loaded):
    import dataclasses

    flat = copy.deepcopy(loaded.model)  # a trained toy model is too sure of itself for seeds to differ
    with torch.no_grad():
        flat.head.weight.mul_(0.1)
    unsure = dataclasses.replace(loaded, model=flat)

    def talk(seed):
        session = ChatSession(unsure, temperature=1.0, seed=seed, max_length=30, **PLAIN)
        return [session.reply("dogs please"), session.reply("hmm")]

    assert talk(3) == talk(3)
    assert any(talk(s) != talk(3) for s in (4, 5, 6))


def test_session_keeps_history_streams_and_resets(loaded):
    session = ChatSession(loaded, temperature=0.0, max_length=20, **PLAIN)
    assert session.context_turns == loaded.model.config.context_turns == 3
    pieces = list(session.reply_stream("goats please"))
    assert session.history == ["goats please", "".join(pieces)]
    session.reply("what?")
    assert len(session.history) == 4
    assert session.context_in_use() == session.history[-2:]
    session.context_turns = 1
    assert session.context_in_use() == []
    session.reset()
    assert session.history == [] and session.context_in_use() == []
    with pytest.raises(CharnnError, match="--temp"):
        ChatSession(loaded, temperature=-1)


def test_a_reply_cut_off_by_its_reader_is_still_recorded(loaded):
    session = ChatSession(loaded, temperature=1.0, seed=0, max_length=20)
    stream = session.reply_stream("cats please")
    first = next(stream)
    stream.close()
    assert session.history == ["cats please", first.strip()]


def test_repl_reads_piped_lines_and_commands(chat_run, monkeypatch, capsys):
    lines = "figs please\n/temp 0\n/context 3\nwhat?\n/beam 2\n/context x\n/reset\n/bogus\nhi\n/quit\nnever\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat", "-c", str(chat_run["ckpt"]), "--seed", "1", "--max-length", "20", "--mmi", "0",
                 "--min-length", "0"]) == 0
    out, err = capsys.readouterr()
    replies = out.splitlines()
    assert len(replies) == 3 and replies[1] == "figs"
    assert "(greedy)" in err and "(beam 2)" in err and "(conversation cleared)" in err  # --mmi 0 --min-length 0 stay
    assert "/context needs a number" in err and "unknown command /bogus" in err


def test_eval_on_a_chat_checkpoint_shows_that_context_helps(chat_run, capsys):
    assert main(["eval", str(chat_run["ckpt"]), str(chat_run["corpus"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scored"].startswith("the held-out 10%") and result["replies"] == 30 * 4
    assert result["bits_per_char_without_context"] > result["bits_per_char"] + 0.1
    assert result["bits_per_char_last_turn_only"] > result["bits_per_char"]
    # every turn but the first of each conversation (which has no context either way) gains from it
    assert result["replies_more_likely_with_context"] >= 0.7
    assert 0 < result["distinct_1"] <= 1 and 0 < result["distinct_2"] <= 1
    # the toy model's last reply repeats the first turn: ranked by PMI it is found far above chance (0.05)
    assert result["ranked"] == 90 and result["hits_at_1_pmi"] > 0.3
    assert list(result["decodings"]) == ["default", "beam 5", "plain sampling", "plain beam 5"]
    for entry in result["decodings"].values():
        for where in ("contexts", "openers"):
            assert 0 <= entry[where]["short_share"] <= 1 and entry[where]["mean_words"] > 0
    assert any("(real reply: " in line for line in result["examples"])
    # the headline figures land in the run's record, where `charnn models` lists them
    record = json.loads((chat_run["run"] / "run.json").read_text())
    assert record["hits_at_1"] == result["hits_at_1"] and record["reply_bpc"] == result["bits_per_char"]
    # and an export of the run keeps them in its summary, so a shipped model lists them too
    assert main(["export", str(chat_run["run"]), str(chat_run["run"].parent / "shipped" / "mine-chat.pt")]) == 0
    assert "carried hits_at_1, hits_at_1_pmi, reply_bpc" in capsys.readouterr().err
    summary = json.loads((chat_run["run"].parent / "shipped" / "mine-chat.json").read_text())
    assert summary["hits_at_1_pmi"] == result["hits_at_1_pmi"] and summary["reply_bpc"] == result["bits_per_char"]



def test_eval_of_a_chat_model_on_a_built_in_corpus_name_reads_its_dialogue_file(chat_run, capsys, monkeypatch):
    from charnn.corpora import catalog

    asked = []
    monkeypatch.setattr(catalog, "builtin_path",
                        lambda name, mode="lm", notify=None: asked.append(mode) or chat_run["corpus"])
    assert main(["eval", str(chat_run["ckpt"]), "chitchat", "--json"]) == 0
    assert asked == ["chat"] and json.loads(capsys.readouterr().out)["scored"].startswith("the held-out 10%")


def test_eval_of_a_malformed_dialogue_file_names_the_line(chat_run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    assert main(["eval", str(chat_run["ckpt"]), str(bad)]) == 2
    assert "bad.jsonl line 2: not valid JSON" in capsys.readouterr().err


def test_chat_mode_defaults_to_subword_tokens_and_lm_mode_to_characters(tmp_path):
    from charnn.cli import build_parser
    from charnn.commands.train import settings_from_args

    corpus = write_synthetic(tmp_path / "d.txt", n=5)
    chat = settings_from_args(build_parser().parse_args(["train", str(corpus), "--mode", "chat"]))
    assert (chat.tokenizer.kind, chat.tokenizer.vocab_size, chat.train.seq_len) == ("bpe", 1000, 64)
    assert (chat.model.layers, chat.model.hidden) == (1, 256)
    char = settings_from_args(build_parser().parse_args(["train", str(corpus), "--mode", "chat", "--tokenizer",
                                                         "char"]))
    assert char.tokenizer.kind == "char" and char.train.seq_len == 160
    lm = settings_from_args(build_parser().parse_args(["train", str(corpus)]))
    assert lm.tokenizer.kind == "char"


def test_no_reply_ends_before_the_minimum_number_of_words(loaded):
    from charnn.decoding.replies import Decoding

    model, tok = copy.deepcopy(loaded.model), loaded.tokenizer
    with torch.no_grad():  # a model that would end every reply at once, and otherwise says "a" or " "
        model.head.bias.zero_()
        model.head.weight.zero_()
        model.head.bias[model.config.eos_id] = 50.0
        model.head.bias[tok.encode("a")[0]] = 5.0
        model.head.bias[tok.encode(" ")[0]] = 5.0
    assert "".join(generate_reply(model, tok, ["hi"], decoding=Decoding(temperature=1.0))) == ""
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        reply = "".join(generate_reply(model, tok, ["hi"], generator=gen, decoding=Decoding(min_words=2)))
        assert len(reply.split()) == 2, reply  # ends as soon as the second word has begun
    assert len("".join(generate_reply(model, tok, ["hi"], decoding=Decoding(beam=3, min_words=3))).split()) == 3


def test_the_anti_lm_takes_the_reply_prior_off_each_first_token(loaded):
    """Greedy with MMI picks argmax log p(t | context) - mmi * log p(t | no context), for the first tokens."""
    from charnn.decoding.replies import Decoding, encode_context

    model, tok = loaded.model, loaded.tokenizer
    cfg = model.config
    turns = ["cats please", "ok", "what?"]
    with torch.no_grad():
        bos = torch.tensor([[cfg.bos_id]])
        given = torch.log_softmax(model.decode(encode_context(model, tok, turns, None, "cpu"), bos)[0][0, -1], -1)
        alone = torch.log_softmax(model.decode(encode_context(model, tok, [], 0, "cpu"), bos)[0][0, -1], -1)
    for mmi in (0.0, 0.5, 2.0):
        score = given - mmi * alone
        score[[cfg.pad_id, cfg.bos_id, cfg.sep_id]] = float("-inf")
        first = int(score.argmax())
        found = []
        for _ in generate_reply(model, tok, turns, decoding=Decoding(temperature=0.0, mmi=mmi, mmi_tokens=1,
                                                                      mmi_floor=0.0), candidates=found):
            pass
        assert (found[0].ids[:1] or [cfg.eos_id]) == [first]
        assert found[0].prior == pytest.approx(float(alone[first]) if mmi else 0.0, abs=1e-4)
    # with a floor, however strong the anti-LM, the first token stays among the plausible ones
    found = []
    for _ in generate_reply(model, tok, turns, decoding=Decoding(temperature=0.0, mmi=2.0, mmi_floor=0.1),
                            candidates=found):
        pass
    first = found[0].ids[0] if found[0].ids else cfg.eos_id
    assert float(given[first]) >= float(given.max()) + math.log(0.1) - 1e-5


def test_the_anti_lm_scores_word_starts_and_leaves_the_rest_of_a_word_to_the_model(loaded):
    """After a first token that starts a word, a token that would go on with it is scored by log p(t |
    context) alone; one that starts a new word (a space first) still has the reply prior taken off."""
    from charnn.decoding.replies import Decoding, WordCounter, encode_context

    model, tok = loaded.model, loaded.tokenizer
    cfg = model.config
    words = WordCounter(tok)
    space, letter = tok.encode(" ")[0], tok.encode("a")[0]
    inside = words.inside_words([True, False], "cpu")
    assert not inside[0].any() and inside[1, letter] and not inside[1, space]
    turns = ["figs please", "ok", "what?"]
    for mmi in (0.5, 2.0):
        found = []
        decoding = Decoding(temperature=0.0, mmi=mmi, mmi_tokens=2, mmi_floor=0.0)
        for _ in generate_reply(model, tok, turns, decoding=decoding, candidates=found):
            pass
        first = found[0].ids[0]
        assert not tok.decode([first]).startswith(" ")  # the reply's first word has begun
        with torch.no_grad():
            rin = torch.tensor([[cfg.bos_id, first]])
            given = torch.log_softmax(model.decode(encode_context(model, tok, turns, None, "cpu"), rin)[0][0, -1], -1)
            alone = torch.log_softmax(model.decode(encode_context(model, tok, [], 0, "cpu"), rin)[0][0, -1], -1)
        joins = torch.tensor(words.joins)
        score = torch.where(joins, given, given - mmi * alone)
        score[[cfg.pad_id, cfg.bos_id, cfg.sep_id]] = float("-inf")
        assert found[0].ids[1:2] == [int(score.argmax())] or (len(found[0].ids) == 1 and score.argmax() == cfg.eos_id)


def test_the_anti_lm_floor_is_relative_to_the_likeliest_token_the_guards_allow():
    """A reply the minimum length keeps going must not be left with nothing: when its likeliest next token
    is a forbidden <eos>, the floor keeps the tokens near the likeliest allowed one."""
    from charnn.decoding.replies import anti_lm

    logp = torch.log_softmax(torch.tensor([[6.0, 1.0, 0.5, -3.0]]), -1)  # <eos> (0) is 99 % likely
    prior = torch.log_softmax(torch.zeros(1, 4), -1)
    assert torch.isinf(anti_lm(logp, prior, 1.0, 0.02)[0, 1:]).all()  # beside <eos>, nothing is plausible
    allowed = logp.clone()
    allowed[0, 0] = float("-inf")  # the minimum length forbids <eos>
    kept = anti_lm(allowed, prior, 1.0, 0.02)[0]
    assert torch.isinf(kept[0]) and torch.isfinite(kept[1:3]).all() and torch.isinf(kept[3])


def test_sample_and_rank_draws_n_replies_and_says_the_best_by_the_rerank_score(loaded):
    from charnn.decoding.replies import Decoding
    from charnn.models.seq2seq import context_ids

    model, tok = loaded.model, loaded.tokenizer
    cfg = model.config
    turns = ["figs please", "ok", "what?"]
    decoding = Decoding(temperature=1.0, samples=5, mmi=0.5, min_words=1, max_length=20)
    assert decoding.describe().startswith("sampling temp 1, best of 5")
    found = []
    gen = torch.Generator().manual_seed(3)
    said = "".join(generate_reply(model, tok, turns, decoding=decoding, generator=gen, candidates=found)).strip()
    assert len(found) == 5 and [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert said == found[0].text and len({c.text for c in found}) > 1  # five draws side by side, the best said
    ctx = torch.tensor([context_ids([tok.encode(t) for t in turns], cfg)])
    for c in found:  # each row kept its own state: its log p is the model's for its own reply
        with torch.no_grad():
            logits, _ = model(ctx, torch.tensor([ctx.size(1)]), torch.tensor([[cfg.bos_id, *c.ids]]))
        logp = torch.log_softmax(logits[0].float(), -1)
        targets = [*c.ids, cfg.eos_id] if c.ended else c.ids
        assert c.logp == pytest.approx(float(sum(logp[i, t] for i, t in enumerate(targets))), abs=1e-3)
    # with one token to choose from, every row is the one reply a single draw writes
    sure = Decoding(temperature=1.0, top_k=1, mmi=0.5, min_words=1, max_length=20)
    one, rows = [], []
    "".join(generate_reply(model, tok, turns, decoding=sure, candidates=one))
    "".join(generate_reply(model, tok, turns, decoding=Decoding(**{**sure.__dict__, "samples": 3}), candidates=rows))
    assert [c.ids for c in rows] == [one[0].ids] * 3


def test_a_greedy_reply_with_the_default_samples_is_one_draw_with_its_text_and_score(loaded):
    session = ChatSession(loaded, temperature=0.0, max_length=20)  # samples stays at the default, 8
    said = session.reply("figs please").strip()
    assert len(session.candidates) == 1 and session.candidates[0].text == said
    assert session.candidates[0].score != 0.0 or not said


def test_beam_candidates_carry_their_true_log_probabilities_and_are_ranked(loaded):
    from charnn.decoding.replies import Decoding, reply_candidates
    from charnn.models.seq2seq import context_ids

    model, tok = loaded.model, loaded.tokenizer
    cfg = model.config
    turns = ["figs please", "ok", "what?"]
    found = reply_candidates(model, tok, turns, Decoding(beam=4, mmi=0.5, mmi_tokens=3, max_length=20))
    assert len(found) >= 2 and [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    ctx = torch.tensor([context_ids([tok.encode(t) for t in turns], cfg)])
    for c in found:
        rin = torch.tensor([[cfg.bos_id, *c.ids]])
        with torch.no_grad():
            logits, _ = model(ctx, torch.tensor([ctx.size(1)]), rin)
        logp = torch.log_softmax(logits[0].float(), -1)
        targets = [*c.ids, cfg.eos_id] if c.ended else c.ids
        assert c.logp == pytest.approx(float(sum(logp[i, t] for i, t in enumerate(targets))), abs=1e-3)
        assert c.text == tok.decode(c.ids).strip()


def test_repl_sets_the_anti_lm_weight_minimum_length_and_shows_the_n_best(chat_run, monkeypatch, capsys):
    lines = ("/beam 3\n/mmi 0.25\n/min 2\n/settings\n/nbest\nfigs please\n/nbest\n/mmi 9\n/min x\n/temp 0.5\n"
             "/samples 3\n/samples 0\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat", "-c", str(chat_run["ckpt"]), "--max-length", "20"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and out.strip()
    assert "(anti-LM weight 0.25)" in err and "(replies of at least 2 words)" in err
    assert "(beam 3 · mmi 1.25 · min 5 words)" in err  # a beam brings its own guards
    assert "(beam 3 · mmi 0.25 · min 2 words)" in err and "(no reply yet)" in err
    assert "(sampling temp 0.5, best of 8 · mmi 0.25 · min 2 words)" in err  # the guards set by hand stay
    assert "(sampling temp 0.5, best of 3 · mmi 0.25 · min 2 words)" in err and "--samples must be between" in err
    assert " score " in err and "--mmi must be between" in err and "/min needs a number" in err


def test_chat_flags_default_to_the_measured_decoding_and_a_temperature_means_sampling(loaded):
    from charnn.decoding.replies import default_decoding
    from charnn.presets import CHAT_BEAM_GUARDS, CHAT_DECODING, CHAT_SAMPLING_GUARDS

    default = default_decoding()
    assert (default.beam, default.mmi, default.min_words) == (CHAT_DECODING["beam"], CHAT_SAMPLING_GUARDS["mmi"],
                                                              CHAT_SAMPLING_GUARDS["min_words"])
    session = ChatSession(loaded)
    assert (session.beam, session.mmi, session.min_words) == (default.beam, default.mmi, default.min_words)
    assert session.decoding().samples == CHAT_DECODING["samples"] == default.samples > 1  # sample-and-rank
    assert ChatSession(loaded, samples=1).decoding().samples == 1
    with pytest.raises(CharnnError, match="--samples"):
        ChatSession(loaded, samples=0)
    assert ChatSession(loaded, temperature=0.5).beam == 0  # a temperature asks for sampling
    beam = ChatSession(loaded, beam=5)  # a beam search gets the beam's measured guards
    assert (beam.beam, beam.mmi, beam.min_words) == (5, CHAT_BEAM_GUARDS["mmi"], CHAT_BEAM_GUARDS["min_words"])
    assert (beam.mmi, beam.min_words) != (default.mmi, default.min_words)
    told = ChatSession(loaded, beam=5, mmi=0.1)
    assert told.mmi == 0.1  # a guard the user set stays when the decoding changes kind
    told.set_beam(0)
    assert (told.mmi, told.min_words) == (0.1, CHAT_SAMPLING_GUARDS["min_words"])
    session.set_beam(5)
    assert (session.mmi, session.min_words) == (beam.mmi, beam.min_words)  # beam search brings its guards
    session.set_beam(10)
    assert (session.beam, session.mmi) == (10, beam.mmi)  # a wider beam keeps them
    session.set_beam(0)
    assert (session.mmi, session.min_words) == (default.mmi, default.min_words)  # sampling takes its own back
    with pytest.raises(CharnnError, match="--min-length"):
        ChatSession(loaded, min_words=-1)


def test_hits_at_1_counts_the_real_reply_ranked_first_and_reply_stats_measure_dullness():
    import numpy as np

    from charnn.scoring.chat_quality import Ranking, reply_stats

    given = np.array([[1.0, 2.0, 3.0], [5.0, 1.0, 4.0]])
    alone = np.array([[3.0, 2.0, 3.0], [9.0, 1.0, 4.0]])
    ranking = Ranking(given, alone, np.array([[1, 4, 2], [2, 1, 1]]))
    assert ranking.hits_at_1() == 0.5 and ranking.hits_at_1(1.0) == 1.0
    # per token both real replies lose: 1 nat over 1 token to 2 over 4, and 5 over 2 to 1 over 1
    assert ranking.hits_at_1(per_token=True) == 0.0
    assert Ranking(given, alone).hits_at_1(per_token=True) == 0.5  # without lengths: the summed ranking
    stats = reply_stats(["Hi!", "hi!", "i like cats a lot", "i like dogs"], pmi=[0.0, 0.5, 3.0, 2.5])
    assert stats["pmi"] == pytest.approx(1.5)
    assert stats["short_share"] == 0.5 and stats["top_share"] == 0.5
    assert stats["mean_words"] == pytest.approx(10 / 4) and stats["distinct_1"] == pytest.approx(8 / 10)
    assert stats["distinct_2"] == pytest.approx(5 / 6)
    assert stats["new_word_share"] == 0.0  # no words given to check against


def test_a_reply_with_a_word_the_text_never_has_counts_as_made_up():
    from charnn.scoring.chat_quality import known_words, reply_stats

    known = known_words([["Hi there!", "I like cats."], ["Don't you? “Really”…"]])
    assert {"hi", "there", "cats", "don't", "really"} <= known
    replies = ["HI, cats!", "hisgas are you there", "don't... really?", "I like thood"]
    assert reply_stats(replies, known=known)["new_word_share"] == 0.5


def test_a_decoded_reply_is_scored_without_context_as_the_held_out_replies_are(loaded, chat_run):
    from charnn.scoring.chat_quality import context_free_logp
    from charnn.scoring.replies import reply_losses
    from charnn.text.chat_batches import DialogueExamples
    from charnn.text.dialogue import read_dialogues

    examples = DialogueExamples(read_dialogues(str(chat_run["corpus"]))[:3], loaded.tokenizer, loaded.model.config)
    subset, nats, _ = reply_losses(loaded.model, examples, torch.device("cpu"), drop_context=True, bf16=False)
    for i in (1, 5):
        ids = examples.reply_ids(int(subset[i])).tolist()
        assert context_free_logp(loaded.model, ids, True, torch.device("cpu")) == pytest.approx(-nats[i], rel=1e-5)


def test_ranking_scores_each_pair_as_an_unbatched_forward_pass(loaded, chat_run):
    import numpy as np

    from charnn.scoring.chat_quality import rank_replies
    from charnn.text.chat_batches import DialogueExamples
    from charnn.text.dialogue import read_dialogues

    model, cfg = loaded.model, loaded.model.config
    examples = DialogueExamples(read_dialogues(str(chat_run["corpus"]))[:20], loaded.tokenizer, cfg)
    ranking = rank_replies(model, examples, torch.device("cpu"), n=30, candidates=5, seed=1, batch=7, bf16=False)
    assert ranking.given.shape == (30, 5) == ranking.tokens.shape
    from charnn.scoring.chat_quality import _draw

    picked, cand = _draw(examples, 30, 5, 1)
    for i, j in ((0, 0), (3, 2), (29, 4)):
        ctx, lengths, _, _ = examples.batch(picked[[i]])
        _, _, rin, tgt = examples.batch(picked[[cand[i, j]]])
        with torch.no_grad():
            logits, _ = model(torch.from_numpy(ctx), torch.from_numpy(lengths), torch.from_numpy(rin))
        nats = torch.nn.functional.cross_entropy(logits[0].float(), torch.from_numpy(tgt[0]), ignore_index=0,
                                                 reduction="sum")
        assert ranking.given[i, j] == pytest.approx(float(nats), rel=1e-4)
        assert ranking.tokens[i, j] == int((tgt[0] != 0).sum())
    assert np.all(ranking.alone[:, 0] > 0)

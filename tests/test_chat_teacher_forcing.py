"""Scheduled sampling for the chat decoder: the schedule, the sampled decoder path, resume, the display."""

from __future__ import annotations

import io

import pytest
import torch

from charnn.cli import main
from charnn.errors import CharnnError
from charnn.training.teacher_forcing import SHAPES, TeacherForcing, parse_teacher_forcing
from tests.test_chat import CHAT_ARGS
from tests.test_seq2seq import tiny_model, write_synthetic

CTX = torch.tensor([[5, 6, 7, 3, 8, 3], [9, 3, 0, 0, 0, 0]])
LENGTHS = torch.tensor([6, 2])
RIN = torch.tensor([[1, 5, 6, 7, 8], [1, 9, 10, 0, 0]])
TGT = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 0, 0]])


# -- the schedule -------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_starts_at_one_falls_monotonically_and_stays_at_its_floor(shape):
    schedule = parse_teacher_forcing(f"{shape}:400:0.25")
    ratios = [schedule.ratio(s) for s in range(0, 801, 10)]
    assert ratios[0] == 1.0
    assert all(a >= b for a, b in zip(ratios, ratios[1:], strict=False))
    assert schedule.ratio(400) == pytest.approx(0.25) and schedule.ratio(10_000) == pytest.approx(0.25)
    assert 0.25 < schedule.ratio(200) < 1.0
    assert parse_teacher_forcing(f"{shape}:400").ratio(400) == pytest.approx(0.0)  # the floor defaults to 0


def test_shapes_differ_where_they_should():
    linear, expo, sigmoid = (parse_teacher_forcing(f"{s}:100:0") for s in ("linear", "exponential",
                                                                           "inverse-sigmoid"))
    assert linear.ratio(50) == pytest.approx(0.5) and sigmoid.ratio(50) == pytest.approx(0.5)
    assert expo.ratio(10) < linear.ratio(10) < sigmoid.ratio(10)  # exponential falls first, sigmoid last
    assert sigmoid.ratio(90) < linear.ratio(90)


def test_a_constant_ratio_is_the_same_at_every_step_and_one_means_plain_teacher_forcing():
    assert parse_teacher_forcing("0.7").ratio(0) == parse_teacher_forcing("0.7").ratio(10**6) == 0.7
    assert parse_teacher_forcing("1").always and parse_teacher_forcing("1.0").always
    assert not parse_teacher_forcing("0.99").always and not parse_teacher_forcing("linear:5:1").always
    assert TeacherForcing().always


@pytest.mark.parametrize("text,canonical", [("1", "1"), ("1.0", "1"), ("0.50", "0.5"), ("Linear:200", "linear:200:0"),
                                            ("inverse-sigmoid:30:0.4", "inverse-sigmoid:30:0.4")])
def test_schedule_text_is_stored_in_one_form_that_reads_back_the_same(text, canonical):
    schedule = parse_teacher_forcing(text)
    assert str(schedule) == canonical and parse_teacher_forcing(str(schedule)) == schedule


@pytest.mark.parametrize("text", ["", "1.5", "-0.1", "nan", "inf", "half", "cosine:100", "linear", "linear:0",
                                  "linear:-5", "linear:1.5", "linear:100:2", "linear:100:x", "linear:100:0.5:3"])
def test_a_bad_schedule_is_refused_with_the_flag_and_its_form(text):
    with pytest.raises(CharnnError, match="--teacher-forcing takes a ratio between 0 and 1"):
        parse_teacher_forcing(text)


# -- the sampled decoder path -------------------------------------------------------------


def test_ratio_one_is_the_teacher_forced_path_and_the_step_by_step_loop_agrees_with_it(monkeypatch):
    model = tiny_model()
    with torch.no_grad():
        memory = model.encode(CTX, LENGTHS)
        whole, _ = model.decode(memory, RIN)
        looped = model.decode_scheduled(memory, RIN, teacher_forcing=1.0)
        assert torch.allclose(looped, whole, atol=1e-5)

        def refuse(*args, **kwargs):
            raise AssertionError("ratio 1 must not take the step-by-step path")

        monkeypatch.setattr(model, "decode_scheduled", refuse)
        logits, loss = model(CTX, LENGTHS, RIN, TGT, teacher_forcing=1.0)
        _, default_loss = model(CTX, LENGTHS, RIN, TGT)
    assert torch.equal(logits, whole) and torch.equal(loss, default_loss)


def _inputs_seen(model) -> list[torch.Tensor]:
    """Wrap ``model.decode`` to record the tokens it is fed."""
    seen = []
    decode = model.decode

    def recording(memory, reply_in, state=None):
        seen.append(reply_in.clone())
        return decode(memory, reply_in, state)

    model.decode = recording
    return seen


def test_ratio_zero_feeds_the_model_its_own_samples_and_padding_stays_padding():
    model = tiny_model()
    with torch.no_grad():
        model.head.bias[7] = 50.0  # the model is sure the next token is always 7
        _, forced = model(CTX, LENGTHS, RIN, TGT)
    seen = _inputs_seen(model)
    with torch.no_grad():
        _, free = model(CTX, LENGTHS, RIN, TGT, teacher_forcing=0.0, generator=torch.Generator().manual_seed(0))
    fed = torch.cat(seen, dim=1)
    assert fed.shape == RIN.shape
    assert fed[:, 0].tolist() == [1, 1]  # <bos> is always given
    assert fed[0, 1:].tolist() == [7, 7, 7, 7]
    assert fed[1, 1:].tolist() == [7, 7, 0, 0]  # real positions get the sample, padded ones keep <pad>
    assert not torch.allclose(free, forced)
    seen.clear()
    with torch.no_grad():
        model.decode_scheduled(model.encode(CTX, LENGTHS), RIN, teacher_forcing=1.0)
    assert torch.equal(torch.cat(seen, dim=1), RIN)  # ratio 1 through the loop: only gold tokens


def test_a_ratio_between_feeds_a_mix_in_about_that_share():
    model = tiny_model()
    with torch.no_grad():
        model.head.bias[7] = 50.0
    seen = _inputs_seen(model)
    rin = torch.randint(8, 20, (64, 30), generator=torch.Generator().manual_seed(1))
    rin[:, 0] = 1
    with torch.no_grad():
        model(CTX[:1].expand(64, -1), LENGTHS[:1].expand(64), rin, teacher_forcing=0.75,
              generator=torch.Generator().manual_seed(0))
    own = (torch.cat(seen, dim=1)[:, 1:] == 7).float().mean().item()
    assert 0.2 < own < 0.3


def test_padding_never_changes_outputs_on_the_sampled_path():
    model = tiny_model()
    noisy_ctx, noisy_rin = CTX.clone(), RIN.clone()
    noisy_ctx[1, 2:] = torch.tensor([3, 11, 12, 3])
    noisy_rin[1, 3:] = torch.tensor([13, 14])
    with torch.no_grad():
        clean, _ = model(CTX, LENGTHS, RIN, teacher_forcing=0.5, generator=torch.Generator().manual_seed(3))
        noisy, _ = model(noisy_ctx, LENGTHS, noisy_rin, teacher_forcing=0.5,
                         generator=torch.Generator().manual_seed(3))
    assert torch.allclose(clean[0], noisy[0], atol=1e-6)
    assert torch.allclose(clean[1, :3], noisy[1, :3], atol=1e-6)
    # and the same as the example on its own, unpadded (a sure model, so the samples cannot differ)
    with torch.no_grad():
        model.head.bias[7] = 50.0
        batch, _ = model(CTX, LENGTHS, RIN, teacher_forcing=0.0, generator=torch.Generator().manual_seed(3))
        alone, _ = model(CTX[1:, :2], LENGTHS[1:], RIN[1:, :3], teacher_forcing=0.0,
                         generator=torch.Generator().manual_seed(4))
    assert torch.allclose(batch[1, :3], alone[0], atol=1e-5)


def test_gradients_reach_the_model_through_the_sampled_path():
    model = tiny_model().train()
    _, loss = model(CTX, LENGTHS, RIN, TGT, teacher_forcing=0.0, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert model.embed.weight.grad is not None and model.embed.weight.grad.abs().sum() > 0
    assert model.enc_fwd[0].weight_ih_l0.grad.abs().sum() > 0


# -- training through the CLI -------------------------------------------------------------


def test_the_task_follows_the_schedule_by_step_and_redraws_the_same_samples_for_a_step(tmp_path):
    from charnn.config import RunSettings
    from charnn.training.chat_task import ChatTask

    s = RunSettings(mode="chat", corpus=str(write_synthetic(tmp_path / "d.txt", n=40)))
    s.model.layers, s.model.hidden, s.train.batch_size, s.train.seq_len = 1, 16, 8, 16
    cpu = torch.device("cpu")
    plain = ChatTask(s, cpu)
    plain.train_loss(plain.model, 3)
    assert plain.teacher_forcing is None  # nothing to show under plain teacher forcing
    s.train.teacher_forcing = "linear:10:0.5"
    task = ChatTask(s, cpu)
    assert task.teacher_forcing == 1.0
    first = task.train_loss(task.model, 4)
    assert task.teacher_forcing == pytest.approx(0.8) == task.teacher_forcing_at(4)
    assert torch.equal(task.train_loss(task.model, 4), first)



def test_resumed_training_continues_the_same_schedule(tmp_path):
    corpus = write_synthetic(tmp_path / "d.txt", n=60)
    common = [str(corpus), *CHAT_ARGS, "--eval-every", "1000", "--teacher-forcing", "linear:8:0.2"]
    assert main(["train", *common, "--steps", "8", "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", *common, "--steps", "4", "--out", str(tmp_path / "split")]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "8"]) == 0
    plain = [str(corpus), *CHAT_ARGS, "--eval-every", "1000", "--steps", "8", "--out", str(tmp_path / "plain")]
    assert main(["train", *plain]) == 0
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    c = torch.load(tmp_path / "plain" / "last.pt", weights_only=True)
    assert b["settings"]["train"]["teacher_forcing"] == "linear:8:0.2"
    assert c["settings"]["train"]["teacher_forcing"] == "1"
    assert a["history"]["train_loss"] == pytest.approx(b["history"]["train_loss"], rel=1e-5)
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-6), name
    # the first step is teacher-forced either way; after it the schedule changes what is learnt
    assert a["history"]["train_loss"][0] == pytest.approx(c["history"]["train_loss"][0], rel=1e-6)
    assert a["history"]["train_loss"][4:] != pytest.approx(c["history"]["train_loss"][4:], rel=1e-3)


def test_training_says_it_samples_and_the_progress_line_shows_the_ratio(tmp_path, monkeypatch):
    corpus = write_synthetic(tmp_path / "d.txt", n=60)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["train", str(corpus), *CHAT_ARGS, "--steps", "2", "--teacher-forcing", "exponential:100:0.5",
                 "--out", str(tmp_path / "run")]) == 0
    log = err.getvalue()
    assert "scheduled sampling: teacher forcing falls from 1 to 0.5 by step 100 (exponential)" in log
    assert "| tf 1.00 |" in log  # the first step's line


def test_the_progress_display_follows_the_schedule_from_the_run_settings():
    from charnn.config import RunSettings
    from charnn.report import PlainReporter, RichReporter
    from charnn.training.events import Start, Step

    settings = RunSettings(mode="chat")
    settings.train.teacher_forcing = "linear:100:0.2"

    def start(mode: str, s: RunSettings) -> Start:
        return Start(run_dir="r", run_name="r", mode=mode, device="cpu", parameters=1, train_tokens=1,
                     val_tokens=1, vocab_size=1, tokenizer="char", budget="100 steps", settings=s.to_dict())

    def step(n: int, ratio: float | None = None) -> Step:
        return Step(step=n, epoch=0.0, loss=1.0, bpc=1.0, lr=1e-3, tokens_per_s=1.0, elapsed_s=float(n),
                    eta_s=1.0, progress=n / 100, tokens=n, teacher_forcing=ratio)

    out = io.StringIO()
    report = PlainReporter(out, every_s=0)
    for event in (start("chat", settings), step(1), step(51), step(101), step(102, ratio=0.33)):
        report(event)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("step")]
    assert [line.split("| tf ")[1][:4] for line in lines] == ["1.00", "0.60", "0.20", "0.33"]
    for mode, s in (("chat", RunSettings(mode="chat")), ("lm", settings)):  # plain teacher forcing: no "tf"
        out = io.StringIO()
        report = PlainReporter(out, every_s=0)
        report(start(mode, s))
        report(step(1))
        assert "tf" not in out.getvalue().split("\n", 2)[2]
    rich = RichReporter()  # the live bar takes the field too
    rich(start("chat", settings))
    rich(step(51))
    rich.close()


def test_step_events_carry_the_ratio_of_their_step(tmp_path):
    import json

    corpus = write_synthetic(tmp_path / "d.txt", n=60)
    assert main(["train", str(corpus), *CHAT_ARGS, "--steps", "6", "--teacher-forcing", "linear:4:0.2",
                 "--out", str(tmp_path / "run")]) == 0
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    ratios = {e["step"]: e["teacher_forcing"] for e in events if e.get("event") == "step"}
    assert ratios and all(r is not None for r in ratios.values())
    schedule = parse_teacher_forcing("linear:4:0.2")
    for step, ratio in ratios.items():  # a Step event after N steps reports the ratio the N-th step used
        assert ratio == pytest.approx(schedule.ratio(step - 1))
    assert ratios[1] == 1.0

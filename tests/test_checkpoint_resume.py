import torch

from charnn.config import RunSettings
from charnn.runtime.checkpoint import load_checkpoint, save_checkpoint
from charnn.runtime.loading import load_model
from charnn.training.events import Checkpoint, Done, Eval
from charnn.training.trainer import train_stream


def tiny_settings(corpus, **train) -> RunSettings:
    s = RunSettings(corpus=str(corpus))
    s.model.layers, s.model.hidden, s.model.dropout = 2, 32, 0.1
    s.train.batch_size, s.train.seq_len, s.train.threads = 8, 16, 1
    s.train.warmup_steps, s.train.sample_length = 5, 10
    for k, v in train.items():
        setattr(s.train, k, v)
    return s


class StopAfter:
    """A stop flag that trips after the trainer has asked ``n`` times (once per step)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def test_checkpoint_holds_everything_needed_to_sample_and_resume(small_text, tmp_path):
    events = list(train_stream(tiny_settings(small_text, steps=10, eval_every=5), out=str(tmp_path / "run")))
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    for key in ("model", "model_config", "tokenizer", "optimizer", "step", "task_state", "rng",
                "history", "settings", "version", "kind"):
        assert key in ck, key
    assert ck["step"] == 10 and len(ck["history"]["train_loss"]) == 10
    assert {e.kind for e in events if isinstance(e, Checkpoint)} >= {"last", "best"}
    loaded = load_model(tmp_path / "run" / "best.pt")
    assert loaded.tokenizer.decode(loaded.tokenizer.encode("the cat")) == "the cat"


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "x.pt"
    save_checkpoint(path, {"kind": "lm", "a": torch.ones(3)})
    save_checkpoint(path, {"kind": "lm", "a": torch.zeros(3)})
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert load_checkpoint(path)["a"].sum() == 0


def test_resumed_run_has_the_same_loss_curve_as_an_uninterrupted_one(small_text, tmp_path):
    steps = 24
    list(train_stream(tiny_settings(small_text, steps=steps, eval_every=8), out=str(tmp_path / "a")))
    first = list(train_stream(tiny_settings(small_text, steps=steps, eval_every=8), out=str(tmp_path / "b"),
                              stop=StopAfter(13)))
    done = [e for e in first if isinstance(e, Done)][0]
    assert done.reason == "stopped" and done.step == 13
    resumed = list(train_stream(resume=str(tmp_path / "b")))
    assert [e for e in resumed if isinstance(e, Done)][0].step == steps

    a = load_checkpoint(tmp_path / "a" / "last.pt")["history"]["train_loss"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["history"]["train_loss"]
    assert len(a) == len(b) == steps
    assert torch.allclose(torch.tensor(a), torch.tensor(b), rtol=0, atol=1e-6), (a[12:16], b[12:16])
    wa = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_resume_can_extend_the_budget(small_text, tmp_path):
    list(train_stream(tiny_settings(small_text, steps=6, eval_every=3), out=str(tmp_path / "r")))
    events = list(train_stream(resume=str(tmp_path / "r"), budget={"steps": 9}))
    evals = [e for e in events if isinstance(e, Eval)]
    assert [e for e in events if isinstance(e, Done)][0].step == 9
    assert evals and evals[-1].step == 9


def test_exported_checkpoint_is_smaller_and_samples_like_the_original(small_text, tmp_path):
    from charnn.config import SampleConfig
    from charnn.decoding.sampling import generate_text
    from charnn.runtime.checkpoint import export_checkpoint

    list(train_stream(tiny_settings(small_text, steps=6, eval_every=6), out=str(tmp_path / "r")))
    src = tmp_path / "r" / "best.pt"
    dst = export_checkpoint(src, tmp_path / "small.pt")
    assert dst.stat().st_size < src.stat().st_size / 2
    assert "optimizer" not in load_checkpoint(dst)
    cfg = SampleConfig(temperature=0.0, length=30, seed=0)
    a, b = load_model(src), load_model(dst)
    assert "".join(generate_text(a.model, a.tokenizer, cfg)) == "".join(generate_text(b.model, b.tokenizer, cfg))


def test_loss_scaling_changes_nothing_but_the_scale_and_a_resume_keeps_it(small_text, tmp_path, monkeypatch):
    from charnn.training import trainer

    # in fp32 on the CPU, with the loss scaling CUDA runs get: gradients scaled by a power of two and
    # unscaled again are the same gradients, so the run is the same run
    def run(name, **kw):
        list(train_stream(tiny_settings(small_text, bf16=False, eval_every=6, **kw), out=str(tmp_path / name)))
        return load_checkpoint(tmp_path / name / "last.pt")

    plain = run("plain", steps=12)
    assert plain["grad_scaler"] == {}  # no scaling on a CPU
    monkeypatch.setattr(trainer, "grad_scaler", lambda device, autocast: torch.amp.GradScaler(
        "cpu", init_scale=2.0**10, growth_interval=4))
    scaled = run("scaled", steps=12)
    assert scaled["history"]["train_loss"] == plain["history"]["train_loss"]
    assert all(torch.equal(plain["model"][k], scaled["model"][k]) for k in plain["model"])
    assert scaled["grad_scaler"]["scale"] == 2.0**13  # doubled after every 4 steps without overflow
    resumed = list(train_stream(resume=str(tmp_path / "scaled"), budget={"steps": 16}))
    assert [e for e in resumed if isinstance(e, Done)][0].step == 16
    assert load_checkpoint(tmp_path / "scaled" / "last.pt")["grad_scaler"]["scale"] == 2.0**14  # kept, not reset


def test_the_closing_score_is_kept_apart_from_the_periodic_best(small_text, tmp_path):
    from charnn.report import score
    from charnn.runtime.checkpoint import export_checkpoint
    from charnn.tui.catalog import describe_loaded

    events = list(train_stream(tiny_settings(small_text, steps=10, eval_every=5), out=str(tmp_path / "run")))
    closing = [e for e in events if isinstance(e, Eval) and e.final][0]
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["held_out_bpc"] == closing.val_bpc  # the whole held-out text, as `charnn eval` scores it
    export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "small.pt")
    assert f"held-out {closing.val_bpc:.3f} bpc" in describe_loaded(load_model(tmp_path / "small.pt"))
    # a checkpoint saved by a periodic evaluation has only its slice's score, and says so
    assert score(None, 1.9) == "val 1.900 bpc (periodic)" and score(None, None) == ""


def test_run_json_and_done_give_the_closing_score_only_when_best_pt_is_the_closing_model(
        small_text, tmp_path, monkeypatch):
    import json

    from charnn.training.lm_task import LMTask

    def figures(name, eval_every=5):
        events = list(train_stream(tiny_settings(small_text, steps=10, eval_every=eval_every),
                                   out=str(tmp_path / name)))
        closing = [e for e in events if isinstance(e, Eval) and e.final][0]
        done = [e for e in events if isinstance(e, Done)][0]
        info = json.loads((tmp_path / name / "run.json").read_text())
        best = load_checkpoint(tmp_path / name / "best.pt")
        return closing, done.held_out_bpc, info["held_out_bpc"], best["held_out_bpc"], best["step"]

    # the slice reads worse at every check: best.pt stays the step-5 model, whose whole-text score
    # nobody measured, so the lists show its periodic figure instead of the closing model's
    real, calls = LMTask.evaluate, []

    def worse_each_time(self, model, max_tokens, final=False):
        loss, bpc = real(self, model, max_tokens, final=final)
        calls.append(final)
        return (loss, bpc) if final else (loss, 5.0 + len(calls))

    with monkeypatch.context() as m:
        m.setattr(LMTask, "evaluate", worse_each_time)
        closing, done, listed, in_best, best_step = figures("kept-earlier")
    assert not closing.improved and best_step == 5
    assert done is None and listed is None and in_best is None
    assert load_checkpoint(tmp_path / "kept-earlier" / "last.pt")["held_out_bpc"] == closing.val_bpc

    # with no periodic check to beat, the closing model is best.pt and all three name its score
    closing, done, listed, in_best, best_step = figures("closing-best", eval_every=100)
    assert closing.improved and best_step == 10
    assert done == listed == in_best == closing.val_bpc


def test_weight_average_warms_up_then_holds_its_decay():
    from charnn.training.averaging import WeightAverage

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    avg = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(12.0)
    avg.update()  # keeps (1 + 1) / (10 + 1) of the old average: 2/11 * 1 + 9/11 * 12
    assert torch.allclose(avg.weights[0], torch.full((1, 2), 2 / 11 + 9 / 11 * 12))
    for _ in range(200):
        avg.update()
    assert avg.n == 201 and torch.allclose(avg.weights[0], torch.full((1, 2), 12.0))
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg.update()  # past the warm-up the decay is 0.9
    assert torch.allclose(avg.weights[0], torch.full((1, 2), 0.9 * 12.0))
    avg.copy_to_model()
    assert torch.equal(model.weight, avg.weights[0])


def test_a_finished_run_leaves_the_average_and_resumes_from_its_last_weights(small_text, tmp_path):
    def last(name):
        return load_checkpoint(tmp_path / name / "last.pt")

    list(train_stream(tiny_settings(small_text, steps=8, eval_every=4), out=str(tmp_path / "straight")))
    list(train_stream(tiny_settings(small_text, steps=4, eval_every=4), out=str(tmp_path / "split")))
    list(train_stream(resume=str(tmp_path / "split"), budget={"steps": 8}))
    a, b = last("straight"), last("split")
    # the model a finished run leaves is the average; its last weights stay there to resume from
    assert a["weight_average"]["n"] == 8 and a["resume_weights"] is not None
    assert any(not torch.equal(a["model"][k], a["resume_weights"][k]) for k in a["model"])
    # finishing at step 4 and going on to 8 is the same run as going to 8 at once
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k
        assert torch.allclose(a["resume_weights"][k], b["resume_weights"][k], atol=1e-6), k
    list(train_stream(tiny_settings(small_text, steps=8, eval_every=4, ema=0.0), out=str(tmp_path / "off")))
    off = last("off")
    assert off["resume_weights"] is None and off["weight_average"] is None
    for k in off["model"]:  # without the average the model is the last weights, as before
        assert torch.allclose(off["model"][k], a["resume_weights"][k], atol=1e-6), k


def test_a_checkpoint_from_before_the_average_resumes_without_it(small_text, tmp_path):
    list(train_stream(tiny_settings(small_text, steps=8, eval_every=4, ema=0.0), out=str(tmp_path / "straight")))
    list(train_stream(tiny_settings(small_text, steps=4, eval_every=4, ema=0.0), out=str(tmp_path / "old")))
    # as a checkpoint written before the weight average existed looks: no "ema" in its settings
    path = tmp_path / "old" / "last.pt"
    ck = load_checkpoint(path)
    del ck["settings"]["train"]["ema"], ck["weight_average"], ck["resume_weights"]
    save_checkpoint(path, ck)
    list(train_stream(resume=str(tmp_path / "old"), budget={"steps": 8}))
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(path)
    assert b["settings"]["train"]["ema"] == 0.0 and b["weight_average"] is None
    for k in a["model"]:  # the run goes on as it was trained: last weights, no average
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k


def test_the_checkpoint_layout_reads_the_shipped_models_and_writes_back_the_same_keys():
    from pathlib import Path

    from charnn.runtime.checkpoint import CheckpointData, read_checkpoint

    shipped = sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*.pt"))
    assert shipped
    for path in shipped:
        raw = load_checkpoint(path)
        ck = read_checkpoint(path)
        assert ck.exported and ck.model_config == raw["model_config"] and ck.kind == raw["kind"]
        assert ck.training_weights is ck.model  # an export resumes, if at all, from its weights
        written = ck.to_payload()
        assert set(written) == set(raw) - {"format", "version", "saved_at"}
        assert CheckpointData.from_payload(written) == ck

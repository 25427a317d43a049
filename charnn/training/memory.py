"""Will a model fit? A rough memory estimate checked before training, and out-of-memory detection.

An absurd size (``--layers 64 --hidden 16384``, a batch of millions of tokens)
would otherwise be killed by the kernel's OOM killer with no message at all, so
the trainer compares an estimate with the memory there is and refuses, naming
a size that fits. On a GPU an out-of-memory error is an exception instead; the
trainer catches it (``is_out_of_memory``) and retries at a smaller batch.
"""

from __future__ import annotations

import os
from pathlib import Path

from charnn.errors import CharnnError

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
# weights, gradients, two AdamW moments, the weight average, and the NaN-rollback copy of weights,
# moments and average
BYTES_PER_PARAMETER = 4 * 9


def count_parameters(cell: str, layers: int, hidden: int, embedding: int, vocab: int, tied: bool) -> int:
    g = GATES.get(cell, 4)
    rnn = sum(g * hidden * ((embedding if i == 0 else hidden) + hidden + 2) for i in range(layers))
    return vocab * embedding + rnn + (0 if tied else hidden * vocab) + vocab


def activation_bytes_per_token(cell: str, layers: int, hidden: int, embedding: int, vocab: int) -> int:
    """Memory a training step keeps per (stream x time step): embeddings, gate activations, logits."""
    g = GATES.get(cell, 4)
    return 4 * (2 * embedding + layers * hidden * (2 * g + 4) + 4 * vocab)


def available_bytes(device) -> int | None:
    """Memory this process may use on ``device`` (None when unknown)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    if device.type != "cpu":
        return None
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            pass
    try:  # a container's cgroup limit is often far below the host's memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def fmt_bytes(n: float) -> str:
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def check_model_fits(cell: str, layers: int, hidden: int, embedding: int, vocab: int, tied: bool,
                     device) -> None:
    """Refuse a model whose weights and optimiser state alone cannot fit (before allocating it)."""
    avail = available_bytes(device)
    need = count_parameters(cell, layers, hidden, embedding, vocab, tied) * BYTES_PER_PARAMETER
    if avail is not None and need > avail:
        where = "the GPU has" if device.type == "cuda" else "this machine has about"
        raise CharnnError(
            f"A {layers}-layer, {hidden}-wide {cell.upper()} needs about {fmt_bytes(need)} of memory to train "
            f"and {where} {fmt_bytes(avail)} free; use a smaller --hidden or --layers."
        )


def check_batch_fits(model, cell: str, layers: int, hidden: int, embedding: int, vocab: int,
                     batch: int, seq_len: int, device) -> None:
    """On the CPU, refuse a batch whose activations cannot fit, naming a --batch-size that would.

    (On a GPU the trainer catches the out-of-memory error and retries smaller instead.)
    """
    if device.type != "cpu":
        return
    avail = available_bytes(device)
    if avail is None:
        return
    static = sum(p.numel() for p in model.parameters()) * BYTES_PER_PARAMETER
    per_token = activation_bytes_per_token(cell, layers, hidden, embedding, vocab)
    need = static + batch * seq_len * per_token
    if need <= avail:
        return
    fits = int((avail * 0.8 - static) // (seq_len * per_token))
    if fits >= 1:
        hint = f"--batch-size {min(fits, batch - 1)} would fit"
    else:
        t = max(1, int((avail * 0.8 - static) // per_token))
        hint = f"--batch-size 1 --seq-len {t} would fit" if t < seq_len else "use a smaller --hidden"
    raise CharnnError(
        f"--batch-size {batch} --seq-len {seq_len} needs about {fmt_bytes(need)} of memory and this "
        f"machine has about {fmt_bytes(avail)} free; {hint}."
    )


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)

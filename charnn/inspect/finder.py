"""The unit finder: which units track each probe (Pearson r over the text), and how often each
gate is saturated (Karpathy, Johnson & Fei-Fei 2015: below 0.1 or above 0.9 of the time).

Both are sums over the text, gathered chunk by chunk, so no layer's activations are kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SATURATION = (0.1, 0.9)  # a gate below the first value is shut, above the second open
GATES = ("i", "f", "o")


@dataclass
class UnitMatch:
    probe: str
    layer: int
    unit: int
    signal: str
    r: float


@dataclass
class GateSaturation:
    layer: int
    gate: str
    left: float  # share of (steps x units) with the gate below 0.1
    right: float  # ... above 0.9
    unit_left: np.ndarray  # (hidden,) each unit's share of steps below 0.1
    unit_right: np.ndarray  # (hidden,) ... above 0.9


@dataclass
class Findings:
    matches: list[UnitMatch]  # the best units per probe, best first within each probe
    saturation: list[GateSaturation]
    correlations: dict[tuple[int, str], np.ndarray]  # (layer, signal) -> (hidden, probes) r; NaN where undefined
    probes: tuple[str, ...]

    def best(self, probe: str) -> UnitMatch | None:
        return next((m for m in self.matches if m.probe == probe), None)


class Finder:
    """Pearson r of every unit of every signal against every probe, from running sums."""

    def __init__(self, probes: dict[str, np.ndarray], top: int = 3):
        self.names = tuple(probes)
        self.values = np.stack([probes[k] for k in self.names], axis=1).astype(np.float64)  # (n, P)
        self.top = top
        self.sums: dict[tuple[int, str], list[np.ndarray]] = {}
        self.gate_counts: dict[tuple[int, str], list[np.ndarray]] = {}
        self.n = 0

    def add(self, start: int, layers: list[dict]) -> None:
        p = None
        for k, signals in enumerate(layers):
            for name, t in signals.items():
                x = t.double().cpu().numpy()
                if p is None:
                    p = self.values[start : start + len(x)]
                    self.n += len(x)
                acc = self.sums.setdefault((k, name), [0.0, 0.0, 0.0])
                acc[0] = acc[0] + x.sum(0)
                acc[1] = acc[1] + np.einsum("th,th->h", x, x)
                acc[2] = acc[2] + x.T @ p
                if name in GATES:
                    g = self.gate_counts.setdefault((k, name), [0, 0])
                    g[0] = g[0] + (x < SATURATION[0]).sum(0)
                    g[1] = g[1] + (x > SATURATION[1]).sum(0)

    def result(self) -> Findings:
        n = max(self.n, 1)
        p = self.values[: self.n]
        sp, spp = p.sum(0), (p * p).sum(0)
        var_p = n * spp - sp * sp
        corr = {}
        for key, (sx, sxx, sxp) in self.sums.items():
            var_x = n * sxx - sx * sx
            cov = n * sxp - np.outer(sx, sp)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = cov / np.sqrt(np.outer(var_x, var_p))
            r[:, var_p <= 1e-9 * n * n] = np.nan  # a probe that never changes says nothing
            r[var_x <= 1e-12 * n * n, :] = np.nan  # nor does a unit that never moves
            corr[key] = r
        return Findings(self._matches(corr), self._saturation(n), corr, self.names)

    def _matches(self, corr: dict) -> list[UnitMatch]:
        matches = []
        for j, probe in enumerate(self.names):
            found = [(abs(r[u, j]), k, int(u), s, float(r[u, j]))
                     for (k, s), r in corr.items() for u in np.argsort(-np.nan_to_num(np.abs(r[:, j])))[: self.top]
                     if np.isfinite(r[u, j])]
            found.sort(key=lambda m: -m[0])
            matches += [UnitMatch(probe, k, u, s, r) for _, k, u, s, r in found[: self.top]]
        return matches

    def _saturation(self, n: int) -> list[GateSaturation]:
        out = []
        for (k, gate), (lo, hi) in sorted(self.gate_counts.items()):
            out.append(GateSaturation(k, gate, float(lo.mean() / n), float(hi.mean() / n), lo / n, hi / n))
        return out

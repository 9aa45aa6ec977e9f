"""Summaries of token counts: distributions, and totals estimated from a random sample.

Counting every token of a large file is the most expensive step of a check, and a cost
estimate does not need it: the bytes of every example are known for free, and tokens follow
bytes closely. `ratio_estimate` is the survey ratio estimator: from a random sample of examples
it takes tokens per byte and scales the population's bytes, with a normal-approximation
confidence interval (Cochran, *Sampling Techniques*, 3rd ed., §6.3). Its error shrinks with the
spread of tokens-per-byte between examples, not with the spread of their lengths, which is
why it needs far fewer examples than scaling a mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def distribution(values: np.ndarray) -> dict[str, Any]:
    """count, sum, min, p5, p50, p95, max, mean and a power-of-two histogram of `values`.

    Percentiles are values that occur (numpy's "nearest" method, as Google's token notebook
    computes them). Histogram bin k holds values in [2^(k-1), 2^k) (bin 0 holds zeros); only
    bins up to the largest value are listed, as `{"from": low, "to": high, "count": n}`.
    """
    v = np.asarray(values, dtype=np.int64)
    if not v.size:
        return {"count": 0, "sum": 0, "min": None, "p5": None, "p50": None, "p95": None, "max": None, "mean": None,
                "histogram": []}
    p5, p50, p95 = (int(x) for x in np.percentile(v, [5, 50, 95], method="nearest"))
    return {"count": int(v.size), "sum": int(v.sum()), "min": int(v.min()), "p5": p5, "p50": p50, "p95": p95,
            "max": int(v.max()), "mean": round(float(v.mean()), 2), "histogram": histogram(v)}


def histogram(values: np.ndarray) -> list[dict[str, int]]:
    """Counts in power-of-two bins: [0, 1), [1, 2), [2, 4), ... up to the bin of the maximum."""
    v = np.asarray(values, dtype=np.int64)
    if not v.size:
        return []
    bins = np.zeros(v.size, dtype=np.int64)
    positive = v > 0
    bins[positive] = np.floor(np.log2(v[positive])).astype(np.int64) + 1
    counts = np.bincount(bins)
    out = []
    for k, n in enumerate(counts.tolist()):
        low, high = (0, 1) if k == 0 else (1 << (k - 1), 1 << k)
        out.append({"from": low, "to": high, "count": int(n)})
    return out


@dataclass(frozen=True)
class Estimate:
    """A population total estimated from a sample, with its 95 % confidence interval."""

    value: float
    low: float
    high: float
    sampled: int  # sample units
    population: int

    @property
    def relative_half_width(self) -> float:
        return (self.high - self.low) / 2 / self.value if self.value else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"value": round(self.value), "low": round(self.low), "high": round(self.high), "confidence": 0.95,
                "relative_half_width": round(self.relative_half_width, 6), "sampled": self.sampled,
                "population": self.population}


def ratio_estimate(y: np.ndarray, x: np.ndarray, x_total: float, population: int) -> Estimate:
    """The total of y over a population of `population` units whose x sum to `x_total`, from a
    simple random sample of units (y, x measured on each).

    Ŷ = R̂·X with R̂ = Σy/Σx; Var(Ŷ) ≈ N²(1 − n/N)/n · s², s² the sample variance of the
    residuals y − R̂x. A sample that is the whole population has no error.
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = int(y.size)
    if n == 0 or float(x.sum()) == 0.0:
        return Estimate(0.0, 0.0, 0.0, n, population)
    ratio = float(y.sum()) / float(x.sum())
    value = ratio * x_total
    if n >= population or n < 2:
        half = 0.0 if n >= population else value
        return Estimate(value, max(0.0, value - half), value + half, n, population)
    residual = y - ratio * x
    s2 = float(residual.var(ddof=1))
    variance = population * population * (1 - n / population) / n * s2
    half = Z95 * variance ** 0.5
    return Estimate(value, max(0.0, value - half), value + half, n, population)

"""The statistics of experiments: two rates compared, and a variant test's winner.

Two proportions (clicks over sends, conversions over contacts) are compared the
textbook way, with the standard library's normal distribution:

- **significance**: the two-sided two-proportion z-test (pooled standard error);
  a variant wins only when p < 0.05 against each other variant, the 0.05 divided
  among the comparisons when there are more than two (Bonferroni), so a test with
  many variants does not find a "winner" by chance more often;
- **interval**: the difference of the rates with its 95 % confidence interval
  (Wald, unpooled standard error), what the report shows beside each variant, each
  split arm and the workflow's lift over its holdout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

#: The significance level of a winner, and the confidence level of intervals.
ALPHA = 0.05
LEVEL = 0.95
_Z = NormalDist().inv_cdf(1 - (1 - LEVEL) / 2)


@dataclass(frozen=True)
class Difference:
    """`rate` of one group minus `base_rate` of the other, with its interval and p-value."""

    rate: float
    base_rate: float
    difference: float
    low: float
    high: float
    p_value: float

    def as_json(self) -> dict[str, float]:
        return {
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
        }


def compare(successes: int, total: int, base_successes: int, base_total: int) -> Difference | None:
    """One group against a base group; None when either has no one in it."""
    if total <= 0 or base_total <= 0:
        return None
    rate, base = successes / total, base_successes / base_total
    pooled = (successes + base_successes) / (total + base_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total + 1 / base_total))
    if spread == 0:
        p_value = 1.0  # both all or nothing: no evidence of a difference
    else:
        z = (rate - base) / spread
        p_value = 2 * (1 - NormalDist().cdf(abs(z)))
    error = math.sqrt(rate * (1 - rate) / total + base * (1 - base) / base_total)
    difference = rate - base
    return Difference(
        rate, base, difference, difference - _Z * error, difference + _Z * error, p_value
    )


@dataclass(frozen=True)
class Verdict:
    """A variant test's figures at one moment: the leader, and whether it won."""

    leader: str | None
    winner: str | None
    p_values: Mapping[str, float]


def judge(counts: Mapping[str, tuple[int, int]], lower_is_better: bool) -> Verdict:
    """Variant → (successes, sends): the leader wins when significantly better than each other.

    Significance is the two-sided z-test at `ALPHA`, Bonferroni-corrected: with k variants
    the leader must beat each of the k − 1 others at ALPHA / (k − 1).
    """
    rated = {name: x / n for name, (x, n) in counts.items() if n > 0}
    if len(rated) < 2 or len(rated) < len(counts):
        return Verdict(None, None, {})
    leader = (min if lower_is_better else max)(rated, key=lambda name: rated[name])
    others = [name for name in counts if name != leader]
    threshold = ALPHA / len(others)
    p_values: dict[str, float] = {}
    for other in others:
        found = compare(*counts[leader], *counts[other])
        assert found is not None
        p_values[other] = found.p_value
    won = all(rated[leader] != rated[o] and p_values[o] < threshold for o in others)
    return Verdict(leader, leader if won else None, p_values)

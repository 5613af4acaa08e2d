"""Which success-rate differences are significant: two-proportion tests with Holm's correction.

Each pair of arms (k1/n1 vs k2/n2) gets a two-sided test of equal success rates: the pooled two-proportion z-test,
or Fisher's exact test when an expected cell count is below 5 (the normal approximation is not valid there, e.g.
3/100 against 0/200: z-test p 0.014, exact p 0.036); the p-values of one table are
adjusted with Holm's step-down method so that the family-wise error rate stays at alpha (0.05). Episodes are
treated as independent Bernoulli trials, which ignores the variance between seeds: seeds are pooled.

When seeds disagree, the honest unit is the seed: `seed_permutation_p` compares two arms' per-seed success rates
with an exact permutation test on the difference of their means (every relabelling of the seeds enumerated). With
few seeds it cannot reach a small p at all (3 + 3 seeds: at best 0.1), and it says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of H0: p1 == p2 (pooled z-test); 1.0 when it is undefined (no episodes, 0% or 100% both)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def fisher_exact_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value of the 2x2 table [[k1, n1-k1], [k2, n2-k2]]: under fixed margins, the total
    probability of every table no more likely than the observed one (the convention of R's fisher.test and
    scipy.stats.fisher_exact). 1.0 when a group has no episodes."""
    if n1 == 0 or n2 == 0:
        return 1.0
    successes = k1 + k2

    def log_prob(x: int) -> float:  # hypergeometric: x of the successes fall in group 1
        return _log_comb(n1, x) + _log_comb(n2, successes - x) - _log_comb(n1 + n2, successes)

    observed = log_prob(k1) + math.log1p(1e-7)  # relative tolerance for ties in floating point
    tables = range(max(0, successes - n2), min(successes, n1) + 1)
    return min(1.0, sum(math.exp(lp) for x in tables if (lp := log_prob(x)) <= observed))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of H0: p1 == p2 with the test that is valid for these counts: the pooled z-test when
    every expected cell count is at least 5 (Cochran's rule), Fisher's exact test otherwise (a 0% arm, a
    handful of successes), where the normal approximation overstates significance."""
    if n1 == 0 or n2 == 0:
        return 1.0
    rate = (k1 + k2) / (n1 + n2)
    expected = min(n1, n2) * min(rate, 1 - rate)
    return two_proportion_p(k1, n1, k2, n2) if expected >= 5 else fisher_exact_p(k1, n1, k2, n2)


PROPORTION_TEST = "two-proportion z-test (Fisher's exact test where an expected count is below 5)"


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (same order as the input), monotone and capped at 1."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    m = len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def seed_permutation_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact permutation p-value of H0: the per-seed rates `a` and `b` come from one distribution
    (statistic: |mean a − mean b|, every split of the pooled seeds into |a| and |b| enumerated); 1.0 if either is
    empty."""
    if not a or not b:
        return 1.0
    pooled = [*a, *b]
    observed = abs(sum(a) / len(a) - sum(b) / len(b))
    total = sum(pooled)
    count = 0
    for idx in combinations(range(len(pooled)), len(a)):
        sa = sum(pooled[i] for i in idx)
        count += abs(sa / len(a) - (total - sa) / len(b)) >= observed - 1e-12
    return count / math.comb(len(pooled), len(a))


def smallest_seed_p(n_a: int, n_b: int) -> float:
    """The smallest p `seed_permutation_p` can give with n_a and n_b seeds (perfectly separated rates)."""
    return seed_permutation_p([float(n_b + i) for i in range(n_a)], [float(i) for i in range(n_b)])


def pairwise[T](
    arms: dict[str, T], test: Callable[[T, T], float], alpha: float = 0.05
) -> list[tuple[str, str, float, float, bool]]:
    """Every pair (a, b) of `arms` in label order: (a, b, raw p = test(arms[a], arms[b]), Holm-adjusted p over
    all pairs, significant at alpha)."""
    labels = list(arms)
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    raw = [test(arms[a], arms[b]) for a, b in pairs]
    return [(a, b, p, ph, ph < alpha) for (a, b), p, ph in zip(pairs, raw, holm(raw), strict=True)]


@dataclass
class Comparison:
    a: str
    b: str
    rate_a: float
    rate_b: float
    p: float
    p_holm: float
    significant: bool

    @property
    def better(self) -> str:
        return self.a if self.rate_a >= self.rate_b else self.b

    @property
    def worse(self) -> str:
        return self.b if self.rate_a >= self.rate_b else self.a


def compare_all(arms: dict[str, tuple[int, int]], alpha: float = 0.05) -> list[Comparison]:
    """Every pair of arms {label: (successes, episodes)}, in label order, with Holm-adjusted p-values."""
    out = []
    for a, b, p, ph, sig in pairwise(arms, lambda x, y: proportion_p(*x, *y), alpha):
        (ka, na), (kb, nb) = arms[a], arms[b]
        out.append(Comparison(a, b, ka / na if na else 0.0, kb / nb if nb else 0.0, p, ph, sig))
    return out

"""Robustness of the audit's explanations: Captum's infidelity and max-sensitivity of the
Integrated Gradients attributions of :mod:`kgrec.audit.explain`.

Input space. One explanation is of the score ``f(x) = score(u, i)`` as a function of the
edge masks ``x ∈ [0, 1]^M`` (:func:`kgrec.audit.explain.masked_score`; ``forward`` maps
``[N, M] → [N]``), explained at ``x = 1`` (every input edge present) against the baseline
``b = 0`` (every edge removed), with attributions ``a = IG(f, x, b) ∈ R^M`` (shape
``[1, M]`` below), ``Σ_j a_j = f(1) − f(0) − δ``.

Infidelity (Yeh et al. 2019, :func:`captum.metrics.infidelity`)::

    INFD(a, f, x) = E_I[(Iᵀ a − (f(x) − f(x − I)))²]

over random perturbations ``I``. The perturbation is *subset removal*: each input edge is
removed (set to its baseline) independently with probability ``p`` (``removal``),
``x̃ = x ⊙ (1 − s) + b ⊙ s`` with ``s ~ Bernoulli(p)^M``. It is passed through Captum's
``infidelity_perturb_func_decorator(multiply_by_inputs=True)``, so ``I = (x − x̃) / (x − b)
= s``: IG's attributions are *global* (they already multiply the gradient by ``x − b``), and
for global attributions Captum's documentation prescribes binary perturbations that select a
subset of ``x − b``. ``Iᵀ a`` is then the attributions' prediction of the score lost by
removing the edges in ``s`` (sensitivity-n, Ancona et al. 2018), which is what an explanation
of which edges drive a score claims. Gaussian noise on the masks would need *local*
attributions (IG with ``multiply_by_inputs=False``) and moves masks outside ``[0, 1]``.

The value is computed on the score in units of the explanation's own gap
``g = |f(1) − f(0)|`` (``forward / g`` and ``a / g``; ``g = 1`` when it is 0), so
``INFD = E[(Iᵀa − Δf)²] / g²``: an infidelity of 0.01 is a root-mean-square error of the
predicted score change of 10% of that gap, comparable across users whose scores differ in
scale. ``normalize=False``: Captum's ``normalize=True`` rescales the attributions by the best
factor ``β`` first, which makes the value invariant to the *attributions'* scale, not the
*score's*; IG's completeness fixes that scale, and a wrong scale is an error a reviewer should
see, not have fitted away. 0 is perfect (the removal effects are additive and IG recovers
them); lower is better.

Max-sensitivity (:func:`captum.metrics.sensitivity_max`)::

    SENS(a, x) = max_{j ≤ n} ‖a(x + ε_j) − a(x)‖₂ / ‖a(x)‖₂,   ε_j ~ U[−r, r]^M

with Captum's default perturbation (uniform in the L∞ ball of radius ``r``, ``radius``) and
``a(·)`` the *same* IG explanation function (baseline 0, Gauss-Legendre, the explanation's
own number of steps). Captum divides by ``‖a(x)‖``, so the value is already a relative change
(0.05: the attributions move by 5% of their size). For a model linear in the masks
``a(x) = x ⊙ w`` and ``SENS ≤ r ‖w‖ / ‖x ⊙ w‖`` (``= r`` at ``x = 1``); lower is better.

Cost, per explanation: infidelity ``samples`` forward passes without gradients; max-
sensitivity ``sensitivity_samples`` further IG runs (``n_steps`` forward and backward
passes each, one perturbation at a time); the unperturbed explanation is reused, not
recomputed. Seeds: ``torch.manual_seed(seed)`` before each Captum call, inside
``torch.random.fork_rng``, so the values of an explanation depend on the seed and that
explanation alone and the caller's random state is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

Forward = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class RobustnessSettings:
    """What the robustness metrics are computed with (the plan's ``explanations`` block):
    ``infidelity_samples`` removals per explanation, each edge removed with probability
    ``removal``; ``sensitivity_samples`` perturbations of radius ``radius``; ``seed``."""

    infidelity_samples: int = 10
    removal: float = 0.2
    sensitivity_samples: int = 1
    radius: float = 0.02
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def removal_perturbation(*, removal: float) -> Callable[..., tuple[tuple[Tensor, ...], tuple[Tensor, ...]]]:
    """Captum's perturbation function for infidelity: each input removed (set to its
    baseline) with probability ``removal``; returns ``(I, x̃)`` with ``I = (x − x̃)/(x − b)``
    the 0/1 removal indicator (``infidelity_perturb_func_decorator(multiply_by_inputs=True)``)."""
    from captum.metrics import infidelity_perturb_func_decorator

    @infidelity_perturb_func_decorator(multiply_by_inputs=True)
    def perturb(inputs: Tensor, baselines: Tensor) -> Tensor:
        removed = torch.rand(inputs.shape) < removal
        return torch.where(removed, baselines.expand_as(inputs), inputs)

    return perturb


def explanation_infidelity(*, forward: Forward, attributions: np.ndarray, gap: float, removal: float,
                           samples: int, seed: int) -> float:
    """Captum infidelity of ``attributions`` [M] of ``forward`` at ``x = 1`` (baseline 0)
    under subset removal, in units of ``gap² = (f(1) − f(0))²`` (module docstring)."""
    from captum.metrics import infidelity

    m = attributions.shape[0]
    scale = abs(gap) if abs(gap) > 0 else 1.0
    attr = torch.as_tensor(attributions, dtype=torch.float32).reshape(1, m) / scale
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        value = infidelity(lambda x: forward(x) / scale, removal_perturbation(removal=removal), torch.ones(1, m),
                           attr, baselines=torch.zeros(1, m), n_perturb_samples=samples, normalize=False)
    return float(value.reshape(-1)[0])


def explanation_sensitivity(*, forward: Forward, attributions: np.ndarray, n_steps: int, radius: float,
                            samples: int, seed: int) -> float:
    """Captum max-sensitivity of the IG explanation of ``forward`` at ``x = 1`` (baseline 0,
    ``n_steps`` Gauss-Legendre steps) under ``samples`` uniform perturbations in the L∞ ball of
    ``radius``; ``attributions`` [M] are that explanation at ``x`` (reused, not recomputed)."""
    from captum.attr import IntegratedGradients
    from captum.metrics import sensitivity_max

    m = attributions.shape[0]
    ones = torch.ones(1, m)
    known = (torch.as_tensor(attributions, dtype=torch.float32).reshape(1, m),)
    ig = IntegratedGradients(forward)

    def explain(inputs: tuple[Tensor, ...], **kwargs: Any) -> tuple[Tensor, ...]:
        if inputs[0] is ones:  # Captum's first call: the explanation being judged
            return known
        return ig.attribute(inputs, **kwargs)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        value = sensitivity_max(explain, ones, perturb_radius=radius, n_perturb_samples=samples,
                                max_examples_per_batch=1, baselines=torch.zeros(1, m), n_steps=n_steps,
                                method="gausslegendre")
    return float(value.reshape(-1)[0])


def robustness(*, forward: Forward, attributions: np.ndarray, gap: float, n_steps: int,
               settings: RobustnessSettings) -> tuple[float, float]:
    """(infidelity, max-sensitivity) of one explanation (module docstring)."""
    infd = explanation_infidelity(forward=forward, attributions=attributions, gap=gap, removal=settings.removal,
                                  samples=settings.infidelity_samples, seed=settings.seed)
    sens = explanation_sensitivity(forward=forward, attributions=attributions, n_steps=n_steps,
                                   radius=settings.radius, samples=settings.sensitivity_samples, seed=settings.seed)
    return infd, sens


def summary(values: Sequence[float | None]) -> dict[str, float | int]:
    """``mean``, ``median`` and ``max`` of the finite ``values`` and their count ``n``
    (NaN statistics when there are none)."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)), "max": float(finite.max()),
            "n": int(finite.size)}

"""Small matplotlib figures for the report, returned as PNG bytes.

Every helper draws on a fresh ``matplotlib.figure.Figure`` rendered by the Agg canvas (no
pyplot, so no global figure registry, no GUI backend and nothing left open), at a fixed
``DPI`` with the Okabe-Ito colour-blind-safe palette, and saves it with
``fig.savefig(buf, format="png")`` without the version metadata (stable bytes). Labels are
drawn literally (a ``$`` does not start mathtext). Non-finite values are drawn as gaps.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

DPI = 110
WIDTH_IN = 7.0
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _plain(text: Any) -> str:
    """Text shown literally by matplotlib (escape mathtext ``$``)."""
    return str(text).replace("$", r"\$")


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))


def _figure(height_in: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, max(2.2, height_in)), dpi=DPI, layout="constrained")
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return buf.getvalue()


def _check_lengths(**seqs: Sequence[Any]) -> int:
    lengths = {k: len(v) for k, v in seqs.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {lengths}")
    return next(iter(lengths.values()), 0)


def bar_with_ci(labels: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                title: str, xlabel: str = "", *, reference: float | None = None) -> bytes:
    """Horizontal bars ``values[i]`` with confidence intervals ``[lows[i], highs[i]]`` (error
    bars; a non-finite bound omits that bar's interval), top to bottom in input order; an
    optional dashed vertical line at ``reference`` (e.g. the 0.8 threshold). Returns PNG."""
    n = _check_lengths(labels=labels, values=values, lows=lows, highs=highs)
    fig = _figure(0.9 + 0.38 * n)
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    vals = [float(v) if _finite(v) else 0.0 for v in values]
    ax.barh(ys, vals, color=PALETTE[0], height=0.6)
    for y, v, lo, hi in zip(ys, values, lows, highs, strict=True):
        if _finite(v) and _finite(lo) and _finite(hi):
            ax.errorbar([float(v)], [y], xerr=[[max(0.0, float(v) - float(lo))], [max(0.0, float(hi) - float(v))]],
                        fmt="none", ecolor="#333333", capsize=3, linewidth=1.2)
    if reference is not None:
        ax.axvline(reference, color=PALETTE[5], linestyle="--", linewidth=1.2, label=f"reference {reference:g}")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.set_yticks(ys, [_plain(t) for t in labels])
    ax.set_title(_plain(title), fontsize=11, loc="left")
    ax.set_xlabel(_plain(xlabel))
    _style(ax)
    return _png(fig)


def forest_plot(rows: Sequence[tuple[str, float, float, float]], title: str, reference: float | None = None, *,
                xlabel: str = "estimate (95% CI)") -> bytes:
    """Forest plot: one row per ``(label, estimate, low, high)``: a point at the estimate and
    a line over the interval (non-finite bounds omit the line, a non-finite estimate the
    point), first row on top; ``reference`` (e.g. 0 for no effect) as a dashed line.
    Returns PNG."""
    n = len(rows)
    fig = _figure(0.9 + 0.38 * n)
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    for y, (_label, est, lo, hi) in zip(ys, rows, strict=True):
        if _finite(lo) and _finite(hi):
            ax.hlines(y, float(lo), float(hi), color="#333333", linewidth=1.5)
        if _finite(est):
            ax.plot([float(est)], [y], marker="s", color=PALETTE[0], markersize=7, linestyle="none")
    if reference is not None:
        ax.axvline(reference, color=PALETTE[5], linestyle="--", linewidth=1.2)
    ax.set_yticks(ys, [_plain(r[0]) for r in rows])
    ax.set_ylim(-0.7, max(n, 1) - 0.3)
    ax.set_title(_plain(title), fontsize=11, loc="left")
    ax.set_xlabel(_plain(xlabel))
    _style(ax)
    return _png(fig)


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str = "", *,
                 reference: float | None = None) -> bytes:
    """Vertical bars, one cluster per group and one bar per series (e.g. ``{"exposure share":
    [...], "relevance share": [...]}`` over item groups), with a legend; optional dashed
    horizontal line at ``reference``. Non-finite values are left out. Returns PNG."""
    n = len(groups)
    for name, vals in series.items():
        if len(vals) != n:
            raise ValueError(f"series {name!r} has {len(vals)} values for {n} groups")
    k = max(len(series), 1)
    width = 0.8 / k
    fig = _figure(3.4)
    ax = fig.add_subplot()
    for j, (name, vals) in enumerate(series.items()):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(n) if _finite(vals[i])]
        ys = [float(v) for v in vals if _finite(v)]
        ax.bar(xs, ys, width=width * 0.95, color=PALETTE[j % len(PALETTE)], label=_plain(name))
    if reference is not None:
        ax.axhline(reference, color="#333333", linestyle="--", linewidth=1.0)
    ax.set_xticks(range(n), [_plain(g) for g in groups], rotation=30 if n > 6 else 0,
                  ha="right" if n > 6 else "center")
    ax.set_title(_plain(title), fontsize=11, loc="left")
    ax.set_ylabel(_plain(ylabel))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    if series:
        ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def tradeoff_plot(points: Sequence[tuple[str, float, float, float, float, float, float]], title: str, *,
                  xlabel: str, ylabel: str, xref: float | None = None, highlight: str | None = None) -> bytes:
    """A trade-off curve: one point per ``(label, x, x_low, x_high, y, y_low, y_high)`` in input
    order, joined by a line, with both CIs as error bars and the label beside the point;
    ``xref`` (e.g. a gate threshold) as a dashed vertical line; the point labelled
    ``highlight`` ringed. Returns PNG."""
    fig = _figure(3.8)
    ax = fig.add_subplot()
    xs = [float(p[1]) for p in points]
    ys = [float(p[4]) for p in points]
    ax.plot(xs, ys, color=PALETTE[0], linewidth=1.2, marker="o", markersize=5)
    for label, x, xlo, xhi, y, ylo, yhi in points:
        if all(_finite(v) for v in (x, y, xlo, xhi, ylo, yhi)):
            ax.errorbar([x], [y], xerr=[[max(0.0, x - xlo)], [max(0.0, xhi - x)]],
                        yerr=[[max(0.0, y - ylo)], [max(0.0, yhi - y)]], fmt="none", ecolor="#777777",
                        capsize=2, linewidth=0.9)
        ax.annotate(_plain(label), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if label == highlight:
            ax.plot([x], [y], marker="o", markersize=13, markerfacecolor="none", markeredgecolor=PALETTE[5],
                    markeredgewidth=1.8, linestyle="none", label=f"weakest passing: {_plain(label)}")
    if xref is not None:
        ax.axvline(xref, color=PALETTE[5], linestyle="--", linewidth=1.2, label=f"gate {xref:g}")
    if xref is not None or highlight is not None:
        ax.legend(frameon=False, fontsize=8, loc="best")
    ax.set_title(_plain(title), fontsize=11, loc="left")
    ax.set_xlabel(_plain(xlabel))
    ax.set_ylabel(_plain(ylabel))
    _style(ax)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    return _png(fig)

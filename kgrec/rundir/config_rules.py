"""Range rules of the run configuration: one table of dotted field → check → what it must be.

:func:`check_ranges` runs the table over one source (the packaged defaults, the user's
YAML file, the ``--set`` overrides, or the merged result) after its types were checked, so
every value is already an ``int``/``float``/``str``/``list``/``None`` of the declared type.
A failure is a :class:`~kgrec.errors.SchemaError` naming the file, the line (when the
source is a :class:`~kgrec.yamlio.LineDict`) and the dotted field::

    schema error: my.yaml:7: field 'train.batch_size': must be a positive integer, got 0

Rules only see keys the source sets, so a file that leaves a key out is not blamed for it.
The name registries below are copies, so that loading a config imports neither torch
(``kgrec.models.debias``) nor scipy.stats (the metrics package); unit tests keep them in step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from kgrec.errors import SchemaError
from kgrec.yamlio import LineDict, LineList

# kgrec.data.splits.SPLIT_METHODS
SPLIT_METHODS = ("random", "temporal", "loo", "cold_items", "cold_users")
# kgrec.models.debias.OBJECTIVES
OBJECTIVES = ("bpr", "softmax", "ips", "pda")
# kgrec.metrics.ranking.METRICS whose only input is the hits matrix and where higher is better:
# what ``validation_score`` can compute for early stopping
ACCURACY_METRICS = ("recall", "precision", "hit", "ndcg", "mrr", "map")

# kgrec.models.rerank.RERANKERS
RERANKERS = ("none", "calibrated")

SEED_MAX = 2**63 - 1  # torch.manual_seed and int64 take it; numpy's legacy seed is reduced mod 2**32


# ---------------------------------------------------------------- checks (value → ok?)

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo: int, hi: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and lo <= v <= hi


def real(interval: str) -> Callable[[Any], bool]:
    """A finite number in ``interval``, written as in maths: ``"(0, 1]"``, ``"[0, inf)"``."""
    m = re.fullmatch(r"([\[(])\s*(\S+),\s*(\S+)\s*([\])])", interval)
    assert m, interval
    lo, hi = float(m[2]), float(m[3])
    lo_ok = (lambda v: v >= lo) if m[1] == "[" else (lambda v: v > lo)
    hi_ok = (lambda v: v <= hi) if m[4] == "]" else (lambda v: v < hi)
    return lambda v: _is_real(v) and lo_ok(v) and hi_ok(v)


def one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in choices


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _ratios(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 3 and all(_is_real(r) and r >= 0 for r in v)
            and v[0] > 0 and abs(sum(v) - 1.0) <= 1e-6)


def _cutoffs(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_is_int(k) and k >= 1 for k in v) and len(set(v)) == len(v)


def _metric(v: Any) -> bool:
    m = re.fullmatch(r"([a-z_]+)@([1-9][0-9]*)", v) if isinstance(v, str) else None
    return m is not None and m[1] in ACCURACY_METRICS


def _nonempty(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _not_nan_or_inf(v: Any) -> bool:
    return not (isinstance(v, float) and not math.isfinite(v))


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Rule:
    field: str                   # dotted path; a trailing ".**" applies to every leaf below
    check: Callable[[Any], bool]
    want: str                    # "must be {want}, got {value!r}"


SEED = (integer(0, SEED_MAX), "an integer in [0, 2**63 - 1]")
POSITIVE_INT = (integer(1), "a positive integer")
MAX_LENGTH = (integer(8, 512), "an integer in [8, 512]")
LR = (real("(0, 10]"), "a finite number in (0, 10]")
POSITIVE = (real("(0, inf)"), "a finite number > 0")

RULES: tuple[Rule, ...] = (
    Rule("seed", *SEED),
    Rule("threads", *POSITIVE_INT),
    Rule("data.name", _nonempty, "a non-empty string"),
    Rule("data.split.method", one_of(SPLIT_METHODS), f"one of {', '.join(SPLIT_METHODS)}"),
    Rule("data.split.ratios", _ratios,
         "three finite numbers >= 0 (train, valid, test) summing to 1, with train > 0"),
    Rule("data.split.cold_fraction", real("(0, 1)"), "a number in (0, 1)"),
    Rule("data.split.seed", optional(SEED[0]), "null or " + SEED[1]),
    Rule("model.name", _nonempty, "a non-empty string"),
    Rule("model.params.**", _not_nan_or_inf, "a finite number (not NaN or infinity)"),
    Rule("train.epochs", *POSITIVE_INT),
    Rule("train.lr", *LR),
    Rule("train.batch_size", *POSITIVE_INT),
    Rule("train.max_steps_per_epoch", optional(POSITIVE_INT[0]), "null or " + POSITIVE_INT[1]),
    Rule("train.n_neg", *POSITIVE_INT),
    Rule("train.objective", one_of(OBJECTIVES), f"one of {', '.join(OBJECTIVES)}"),
    Rule("train.gamma", real("[0, inf)"), "a finite number >= 0"),
    Rule("train.ips_clip", real("(0, 1]"), "a number in (0, 1]"),
    Rule("train.temperature", *POSITIVE),
    Rule("train.patience", *POSITIVE_INT),
    Rule("train.eval_every", *POSITIVE_INT),
    Rule("train.metric", _metric,
         f"NAME@K with NAME one of {', '.join(ACCURACY_METRICS)} and K a positive integer, e.g. 'ndcg@10'"),
    Rule("train.valid_users", optional(POSITIVE_INT[0]), "null or " + POSITIVE_INT[1]),
    Rule("train.max_seconds", optional(POSITIVE[0]), "null or " + POSITIVE[1]),
    Rule("rerank.method", one_of(RERANKERS), f"one of {', '.join(RERANKERS)}"),
    Rule("rerank.strength", real("[0, 1]"), "a number in [0, 1]"),
    Rule("rerank.pool", *POSITIVE_INT),
    Rule("rerank.head_share", real("(0, 1)"), "a number in (0, 1)"),
    Rule("rerank.groupings", lambda v: isinstance(v, list) and len(v) > 0 and all(_nonempty(g) for g in v),
         "a non-empty list of grouping names ('popularity' or categorical item features)"),
    Rule("eval.ks", _cutoffs, "a non-empty list of distinct positive integers"),
    Rule("text.model", _nonempty, "a non-empty string"),
    Rule("text.batch_size", *POSITIVE_INT),
    Rule("text.max_length", *MAX_LENGTH),
    Rule("text.lora_settings.r", *POSITIVE_INT),
    Rule("text.lora_settings.alpha", real("(0, inf)"), "a number > 0"),
    Rule("text.lora_settings.dropout", real("[0, 1)"), "a number in [0, 1)"),
    Rule("text.lora_settings.steps", *POSITIVE_INT),
    Rule("text.lora_settings.batch_size", integer(2), "an integer >= 2 (in-batch negatives)"),
    Rule("text.lora_settings.lr", *LR),
    Rule("text.lora_settings.temperature", *POSITIVE),
    Rule("text.lora_settings.max_length", *MAX_LENGTH),
    Rule("text.lora_settings.seed", *SEED),
)


# ---------------------------------------------------------------- applying it

def _line(parent: Any, key: Any) -> int | None:
    return parent.line_of(key) if isinstance(parent, (LineDict, LineList)) else None


def _leaves(node: Any, path: str, line: int | None) -> Iterator[tuple[str, Any, int | None]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}", _line(node, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]", _line(node, i))
    else:
        yield path, node, line


def _lookup(tree: Any, field: str) -> Iterator[tuple[str, Any, int | None]]:
    """``(dotted path, value, line)`` of what ``tree`` sets at ``field`` (nothing if it does not)."""
    parts = field.split(".")
    glob = parts[-1] == "**"
    if glob:
        parts = parts[:-1]
    node, parent = tree, None
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return
        node, parent = node[part], node
    line = _line(parent, parts[-1])
    if glob:
        yield from _leaves(node, ".".join(parts), line)
    else:
        yield field, node, line


def check_ranges(tree: Any, file: str | None, rules: tuple[Rule, ...] = RULES) -> None:
    """Raise :class:`SchemaError` for the first value of ``tree`` that breaks a rule."""
    for rule in rules:
        for path, value, line in _lookup(tree, rule.field):
            if not rule.check(value):
                raise SchemaError(f"must be {rule.want}, got {value!r}", file=file, line=line, field=path)

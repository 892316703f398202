"""What ``kgrec update`` adds to a run's data set, and what it drops (counted, never silently).

The rows come from an interactions file or an exposure log, read by
:mod:`kgrec.update.sources` (:class:`RawRows`, :class:`AddedItems`; re-exported here);
:func:`plan_additions` classifies them against the run's data set and split, and
:func:`additions_payload` records the result as the new run's ``additions.json``.

What happens to each row (:func:`plan_additions`)
=================================================

In order, every row read is exactly one of:

1. dropped: a new id equal to a known (or an earlier new) one but for surrounding whitespace or
   Unicode normalisation (the loader's rule for ambiguous ids);
2. dropped: a repeat of an earlier row's (user, item) pair (the first is kept);
3. dropped: the pair is already a training interaction of the run;
4. **moved**: the pair is a validation or test row of the run with the same timestamp (or
   the data set has no timestamps): that row joins train instead of being appended, and
   leaves valid/test. This is the temporal protocol: the update file is the part of time
   the parent held out;
5. dropped: the pair is held out by the run at another timestamp (it stays held out, so the
   run's evaluation protocol does not change under the update);
6. **appended**: a new interaction row (a training row of the new run).

New users and items are the unknown ids of appended rows, numbered after the run's in order
of first appearance (so every index of the parent stays valid), plus the log's added items.
They have no node features (missing values) and no text except an added item's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kgrec.errors import DataError, LoadWarning
from kgrec.graphs.dataset import EdgeTable, GraphDataset
from kgrec.rundir.layout import ADDITIONS_FORMAT, ADDITIONS_VERSION
from kgrec.update.sources import AddedItems, RawRows, read_exposure_log, read_interactions, write_interactions

__all__ = ["HELD_REASON", "NO_PART_REASON", "REPEAT_REASON", "TRAIN_REASON", "TWIN_REASON", "AddedItems", "Plan",
           "RawRows", "additions_payload", "plan_additions", "read_exposure_log", "read_interactions",
           "write_interactions"]

TWIN_REASON = "new id equal to a known or earlier one but for surrounding whitespace or Unicode normalisation"
REPEAT_REASON = "repeat of an earlier added (user, item) pair (the first is kept)"
TRAIN_REASON = "(user, item) pair is already a training interaction of the run"
HELD_REASON = "(user, item) pair is held out by the run ({part}) at another timestamp; it stays held out"
NO_PART_REASON = "(user, item) pair is in the run's data set but in no part of its split"


@dataclass
class Plan:
    """The outcome of :func:`plan_additions` (see the module docstring)."""

    new_users: list[str]
    new_items: list[str]
    item_text: list[str | None]  # one per new item (None: no text)
    appended: RawRows  # rows appended to the interactions, by raw id
    table: EdgeTable  # the same rows by index into the extended node tables
    moved: np.ndarray  # indices of held-out rows of the run's interactions that join train
    moved_from: dict[str, int]  # how many came from valid and from test
    read: int  # rows read
    warnings: list[LoadWarning]  # every row dropped, one warning per cause

    @property
    def dropped(self) -> int:
        return sum(w.count for w in self.warnings if w.action == "dropped")

    def summary(self) -> dict[str, Any]:
        return {"rows_read": self.read, "appended": len(self.appended), "moved": dict(self.moved_from),
                "new_users": len(self.new_users), "new_items": len(self.new_items), "dropped": self.dropped,
                "dropped_by_cause": [w.as_dict() for w in self.warnings]}


# -- planning ------------------------------------------------------------------------------------


def _new_slots(raw: np.ndarray, known: dict[str, int], first: Sequence[str] = ()) -> tuple[dict[str, int], set[str]]:
    """Provisional indices of the unknown ids (``first`` in order, then those of ``raw`` in
    order of appearance) after the ``len(known)`` known ones, and the set of new ids that are
    whitespace/Unicode twins of a known or another new id (the canonical form, else the first
    seen, is kept)."""
    from kgrec.graphs.build import canonical

    unknown = [x for x in pd.unique(pd.Series([*first, *raw.tolist()], dtype=object)).tolist() if x not in known]
    if not unknown:
        return {}, set()
    canon_known = {canonical(k) for k in known}
    canon = [canonical(x) for x in unknown]
    order = sorted(range(len(unknown)), key=lambda k: canon[k] != unknown[k])  # canonical ids first (stable)
    seen: set[str] = set()
    twins: set[str] = set()
    for k in order:
        if canon[k] in canon_known or canon[k] in seen:
            twins.add(unknown[k])
        else:
            seen.add(canon[k])
    slots = [x for x in unknown if x not in twins]
    return {x: len(known) + j for j, x in enumerate(slots)}, twins


def plan_additions(dataset: GraphDataset, split: Any, rows: RawRows, added_items: AddedItems | None = None
                   ) -> Plan:
    """Classify every row of ``rows`` against the run's data set and split (module
    docstring). ``dataset`` holds all the run's interactions (held-out ones included);
    ``split`` is its :class:`~kgrec.data.splits.Split`; ``added_items``: items to add even
    without interactions (the log's)."""
    added_items = added_items or AddedItems()
    schema = dataset.schema
    n = len(rows)
    warnings: list[LoadWarning] = []

    def note(w: LoadWarning | None) -> None:
        if w is not None:
            warnings.append(w)

    user_known = dataset.nodes[schema.user_type].index()
    item_known = dataset.nodes[schema.item_type].index()
    user_slots, user_twins = _new_slots(rows.users, user_known)
    item_slots, item_twins = _new_slots(rows.items, item_known, added_items.ids)
    explicit = [x for x in added_items.ids if x in item_slots]
    twin_added = sum(1 for x in added_items.ids if x in item_twins)
    if twin_added:
        warnings.append(LoadWarning(rows.file, None, "items.item_id", f"added item: {TWIN_REASON}", twin_added))
    u = np.fromiter((user_known.get(x, user_slots.get(x, -1)) for x in rows.users.tolist()), np.int64, count=n)
    i = np.fromiter((item_known.get(x, item_slots.get(x, -1)) for x in rows.items.tolist()), np.int64, count=n)
    twin = (u < 0) | (i < 0)
    note(rows.warning(twin, TWIN_REASON))
    n_items_slots = len(item_known) + len(item_slots)
    keys = u * n_items_slots + i
    alive = ~twin
    repeat = np.zeros(n, dtype=bool)
    repeat[alive] = pd.Series(keys[alive]).duplicated().to_numpy()
    note(rows.warning(repeat, REPEAT_REASON))
    alive &= ~repeat

    inter = dataset.interactions
    part = np.zeros(len(inter), dtype=np.int8)  # 0 none, 1 train, 2 valid, 3 test
    for code, name in ((1, "train"), (2, "valid"), (3, "test")):
        part[np.asarray(getattr(split, name), dtype=np.int64)] = code
    ekeys = inter.src.astype(np.int64) * n_items_slots + inter.dst.astype(np.int64)
    order = np.argsort(ekeys, kind="stable")
    hit = np.zeros(n, dtype=bool)
    row = np.full(n, -1, dtype=np.int64)
    if len(order):
        sorted_keys = ekeys[order]
        pos = np.minimum(np.searchsorted(sorted_keys, keys), len(order) - 1)
        hit = alive & (sorted_keys[pos] == keys)
        row = np.where(hit, order[pos], -1)
    row_part = np.where(hit, part[np.maximum(row, 0)], 0)
    same_time = np.ones(n, dtype=bool)
    if inter.timestamp is not None and rows.timestamp is not None:
        same_time = np.where(hit, inter.timestamp[np.maximum(row, 0)] == rows.timestamp, False)
    in_train = hit & (row_part == 1)
    note(rows.warning(in_train, TRAIN_REASON))
    held = hit & (row_part >= 2)
    moved_mask = held & same_time
    for code, name in ((2, "valid"), (3, "test")):
        note(rows.warning(held & ~same_time & (row_part == code), HELD_REASON.format(part=name)))
    no_part = hit & (row_part == 0)
    note(rows.warning(no_part, NO_PART_REASON))
    append = alive & ~hit

    # the new ids, renumbered: users of appended rows; items added explicitly, then those of appended rows
    new_users = [x for x in pd.unique(pd.Series(rows.users[append], dtype=object)).tolist() if x not in user_known]
    seen_items = set(explicit)
    new_items = list(explicit) + [x for x in pd.unique(pd.Series(rows.items[append], dtype=object)).tolist()
                                  if x not in item_known and x not in seen_items]
    user_final = {x: len(user_known) + k for k, x in enumerate(new_users)}
    item_final = {x: len(item_known) + k for k, x in enumerate(new_items)}
    appended = rows.subset(np.flatnonzero(append))
    src = np.fromiter((user_known.get(x, user_final.get(x, -1)) for x in appended.users.tolist()), np.int64,
                      count=len(appended))
    dst = np.fromiter((item_known.get(x, item_final.get(x, -1)) for x in appended.items.tolist()), np.int64,
                      count=len(appended))
    weight = None
    if inter.weight is not None:
        weight = (np.ones(len(appended)) if appended.weight is None else appended.weight).astype(np.float32)
    ts = None
    if inter.timestamp is not None:
        if appended.timestamp is None:
            raise DataError("the data set's interactions have timestamps, the rows to add have none",
                            file=rows.file, field="timestamp")
        ts = appended.timestamp.astype(np.float64)
    text_of = dict(zip(added_items.ids, added_items.text))
    moved = np.sort(row[moved_mask]).astype(np.int64)
    return Plan(new_users, new_items, [text_of.get(x) for x in new_items], appended, EdgeTable(src, dst, weight, ts),
                moved, {"valid": int((moved_mask & (row_part == 2)).sum()),
                        "test": int((moved_mask & (row_part == 3)).sum())}, n, warnings)


def additions_payload(dataset: GraphDataset, plan: Plan, previous: dict[str, Any] | None, base: dict[str, int]
                      ) -> dict[str, Any]:
    """The new run's ``additions.json`` (format: :mod:`kgrec.rundir.load`): the parent's
    additions (``previous``, None for a run trained from the schema's data set) followed by
    this plan's, so the new run needs no other run to load. ``base``: the counts of the
    schema's data set (interactions, users, items)."""
    inter = dataset.interactions
    prev = previous or {"users": [], "items": [], "item_text": [],
                        "interactions": {"user": [], "item": [], "timestamp": [], "weight": []}}
    has_text = dataset.nodes[dataset.schema.item_type].text is not None
    prev_rows = prev["interactions"]
    appended = plan.appended

    def column(key: str, present: bool, values: np.ndarray | None) -> list | None:
        if not present:
            return None
        return list(prev_rows.get(key) or []) + [float(v) for v in (values if values is not None else [])]

    out: dict[str, Any] = {
        "format": ADDITIONS_FORMAT, "version": ADDITIONS_VERSION, "base": dict(base),
        "users": list(prev["users"]) + list(plan.new_users),
        "items": list(prev["items"]) + list(plan.new_items),
        "interactions": {
            "user": list(prev_rows["user"]) + [str(x) for x in appended.users.tolist()],
            "item": list(prev_rows["item"]) + [str(x) for x in appended.items.tolist()],
            "timestamp": column("timestamp", inter.timestamp is not None, plan.table.timestamp),
            "weight": column("weight", inter.weight is not None, plan.table.weight),
        },
    }
    if has_text:
        old_text = prev.get("item_text") or [None] * len(prev["items"])
        out["item_text"] = list(old_text) + list(plan.item_text)
    return out


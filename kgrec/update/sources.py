"""Reading what ``kgrec update`` adds: an interactions file or a ``kgrec serve`` exposure log.

Both readers return :class:`RawRows` (interactions by raw id, in the order read, with where
each came from, for messages) and warnings; what becomes of each row is decided by
:func:`kgrec.update.additions.plan_additions`. :func:`write_interactions` writes the
interactions file format back (the temporal protocol's input).

Inputs
======

* **An interactions file** (``--interactions FILE``) in the format of the schema's interaction
  file: the same file format, encoding, header and columns (for MovieLens-100k an atomic
  file ``user_id:token item_id:token rating:float timestamp:float``). It is read by the
  loader's own reader and row rules (:func:`kgrec.graphs.readers.read_table`, the edge rules
  of :mod:`kgrec.graphs.build`), so it is validated exactly as the data set was. Where
  loading a data set would drop a row with a warning (a timestamp that is not a number, a
  weight outside ``weight_range``, an empty id, ...) the update stops instead, with one line
  naming the file, line and field (exit 4): the file is the user's own, and a guess would
  hide an error in it. Blank lines are skipped and counted. Raw ids that are not in the run
  are new users and new items.
* **An exposure log** of ``kgrec serve`` (``--log DIR``, read-only through
  :class:`kgrec.serve.log.ExposureLog`), see :func:`read_exposure_log`:

  - a click (``bandit_feedback`` reward 1 for the chosen events, default ``click``) of a known
    user is the interaction (user, item, time of the first such event), weight the event's
    value;
  - a fold-in request (``user_id`` NULL, with a history) is a new user ``log:<request_id>``
    whose interactions are the history's items (time: the request's, in history order, so
    the time channel sees them oldest first) and then the request's clicks. The log has no
    identity across requests: two fold-in requests are two users;
  - an item added while serving (``POST /items``, the log's ``items`` table) is a new item,
    also without interactions (a cold item), in the table's order; its ``text`` becomes its
    node text and, where the model reads text, its text vector (encoded with the run's
    encoder by :mod:`kgrec.update.continual`). Its KG ``links`` are not carried into the new
    run (counted and reported): the data set's KG edges stay the schema's;
  - counted and reported as dropped: clicks and history items of unknown items (neither in
    the run nor added while serving), clicks of an unknown ``user_id``, fold-in requests with
    no known item, repeated history items.

  Log times are Unix seconds (``time.time()``); they become interaction timestamps as they
  are, so the schema's timestamps should be Unix seconds too (MovieLens' are).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import DataError, LoadWarning
from kgrec.graphs.dataset import GraphDataset
from kgrec.graphs.schema import Schema


@dataclass
class RawRows:
    """Interactions by raw id, in the order read, with where each came from.

    ``lines``: the file line of each row (an interactions file) or None; ``refs``: a short
    reference per row for messages (``request r1``) or None; ``pair_field``: the field a
    warning about a row's (user, item) pair names."""

    users: np.ndarray  # object [n] of str
    items: np.ndarray  # object [n] of str
    timestamp: np.ndarray | None  # float64 [n]
    weight: np.ndarray | None  # float64 [n]
    file: str
    pair_field: str
    lines: np.ndarray | None = None
    refs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> RawRows:
        def cut(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[rows]

        return RawRows(self.users[rows], self.items[rows], cut(self.timestamp), cut(self.weight), self.file,
                       self.pair_field, cut(self.lines), cut(self.refs))

    def warning(self, mask: np.ndarray, reason: str, field: str | None = None) -> LoadWarning | None:
        """A dropped-rows warning for the rows in ``mask`` (None when there are none)."""
        if not mask.any():
            return None
        first = int(np.flatnonzero(mask)[0])
        line = None if self.lines is None else int(self.lines[first])
        if self.refs is not None:
            reason = f"{reason} (first: {self.refs[first]})"
        return LoadWarning(self.file, line, field or self.pair_field, reason, int(mask.sum()))


@dataclass
class AddedItems:
    """Items added while serving (the log's ``items`` table), in order, with their text."""

    ids: list[str] = field(default_factory=list)
    text: list[str | None] = field(default_factory=list)



# -- reading -----------------------------------------------------------------------------------


def read_interactions(path: str | Path, schema: Schema) -> tuple[RawRows, list[LoadWarning]]:
    """Rows of an interactions file in the schema's interaction format (module docstring);
    returns them and the warnings about skipped blank lines. Any other problem is a
    :class:`~kgrec.errors.DataError` naming file, line and field."""
    from kgrec.graphs.build import _Builder  # the loader's own row rules
    from kgrec.graphs.sources import DataLocation

    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path), field="--interactions")
    spec = schema.interaction
    fspec = dataclasses.replace(schema.files[spec.file], name=path.name, sha256=None)
    local_spec = dataclasses.replace(spec, file=path.name)
    local = dataclasses.replace(schema, files={**schema.files, path.name: fspec},
                                edges={**schema.edges, spec.name: local_spec})
    builder = _Builder(local, DataLocation(path.parent, {}, "kgrec update"))
    table, cols, keep = builder.edge_rows(local_spec)
    blank = [w for w in builder.warnings if w.reason == "blank line"]
    for w in builder.warnings:
        if w.reason != "blank line":
            raise DataError(f"{w.reason} ({w.count:,} such row(s); an update reads its file strictly)", file=w.file,
                            line=w.line, field=w.field)
    rows = np.flatnonzero(keep)
    ts = cols.get("timestamp")
    weight = cols.get("weight")
    return RawRows(cols["src"][rows].astype(object), cols["dst"][rows].astype(object),
                   None if ts is None else ts[rows].astype(np.float64),
                   None if weight is None else weight[rows].astype(np.float64), str(path),
                   f"{spec.src_col}/{spec.dst_col}", lines=table.lines[rows]), blank


def read_exposure_log(log_dir: str | Path, *, users: set[str], items: set[str], events: Sequence[str] = ("click",)
                      ) -> tuple[RawRows, AddedItems, list[LoadWarning], dict[str, Any]]:
    """Interactions from an exposure log (module docstring): the rows, the items added while
    serving, warnings for everything dropped, and what was read (counts, the log's meta).
    ``users`` and ``items``: the run's raw user and item ids."""
    from kgrec.serve.log import ExposureLog

    events = tuple(events)
    with ExposureLog.open(log_dir, create=False, readonly=True) as log:
        path = str(log.path)
        with log.snapshot() as snap:
            meta = snap.meta()
            requests = snap.requests()
            feedback = snap.bandit_feedback(events)
            raw_events = snap.feedback()
            added = snap.items()
    warnings: list[LoadWarning] = []

    def warn(count: int, field: str, reason: str) -> None:
        if count:
            warnings.append(LoadWarning(path, None, field, reason, int(count)))

    # items added while serving
    new_items = AddedItems()
    links = 0
    for item_id, payload in zip(added["item_id"].tolist(), added["payload"].tolist()):
        body = json.loads(payload) if isinstance(payload, str) else {}
        if item_id in items:
            continue  # already in the run (an earlier update read this log)
        text = body.get("text") if isinstance(body, dict) else None
        new_items.ids.append(str(item_id))
        new_items.text.append(text if isinstance(text, str) else None)
        links += bool(isinstance(body, dict) and body.get("links"))
    warn(links, "items.payload.links", "KG links of items added while serving are not carried into the new run "
                                       "(the items are added with their text)")
    known_items = items | set(new_items.ids)

    # the first rewarded event of each (request, item): its time and value
    chosen = raw_events[raw_events["event"].isin(list(events))].sort_values("id")
    first = chosen.drop_duplicates(["request_id", "item_id"], keep="first")
    event_of = {(r, i): (t, v) for r, i, t, v in zip(first["request_id"].tolist(), first["item_id"].tolist(),
                                                     first["ts"].tolist(), first["value"].tolist())}
    clicks = feedback[feedback["reward"] == 1]
    clicks_of: dict[str, list[str]] = {}
    for rid, item in zip(clicks["request_id"].tolist(), clicks["action"].tolist()):
        clicks_of.setdefault(rid, []).append(item)

    out_u: list[str] = []
    out_i: list[str] = []
    out_t: list[float] = []
    out_w: list[float] = []
    out_ref: list[str] = []

    def add(user: str, item: str, t: float, value: float, ref: str) -> None:
        out_u.append(user)
        out_i.append(item)
        out_t.append(t)
        out_w.append(value)
        out_ref.append(ref)
    unknown_click_items = unknown_users = unknown_history = repeated_history = empty_foldin = 0
    foldin_users = 0
    for rid, ts, user, history in zip(requests["request_id"].tolist(), requests["ts"].tolist(),
                                      requests["user_id"].tolist(), requests["history"].tolist()):
        shown_clicks = clicks_of.get(rid, [])
        if user is not None and not (isinstance(user, float) and np.isnan(user)):
            if user not in users:
                unknown_users += len(shown_clicks)
                continue
            uid = str(user)
        else:
            uid = f"log:{rid}"
            hist = json.loads(history) if isinstance(history, str) else []
            seen: set[str] = set()
            n_rows = 0
            for item in hist:
                item = str(item)
                if item not in known_items:
                    unknown_history += 1
                elif item in seen:
                    repeated_history += 1
                else:
                    seen.add(item)
                    add(uid, item, float(ts), 1.0, f"request {rid!r} (history)")
                    n_rows += 1
            n_rows += sum(1 for item in shown_clicks if item in known_items)
            if n_rows == 0:
                empty_foldin += 1
                continue
            foldin_users += 1
        for item in shown_clicks:
            if item not in known_items:
                unknown_click_items += 1
                continue
            t, v = event_of.get((rid, item), (ts, 1.0))
            add(uid, item, float(t), float(v), f"request {rid!r} (click)")
    warn(unknown_click_items, "feedback.item_id", "click on an item neither in the run nor added while serving")
    warn(unknown_users, "requests.user_id", "click of a user_id the run does not know")
    warn(unknown_history, "requests.history", "history item neither in the run nor added while serving")
    warn(repeated_history, "requests.history", "item repeated within one history (the first is kept)")
    warn(empty_foldin, "requests.history", "fold-in request without any known item (no user is added for it)")
    rows = RawRows(np.array(out_u, dtype=object), np.array(out_i, dtype=object), np.array(out_t, dtype=np.float64),
                   np.array(out_w, dtype=np.float64), path, "feedback/history", refs=np.array(out_ref, dtype=object))
    read = {"requests": int(len(requests)), "exposures": int(len(feedback)), "rewarded": int(len(clicks)),
            "events": list(events), "fold_in_users": foldin_users, "items_added": len(new_items.ids),
            "meta": {k: v for k, v in meta.items()}}
    return rows, new_items, warnings, read



# -- writing -----------------------------------------------------------------------------------


def write_interactions(path: str | Path, dataset: GraphDataset, rows: np.ndarray) -> Path:
    """Write rows ``rows`` of ``dataset.interactions`` as a file in the schema's interaction
    format (the header line of the data set's own file, then one line per row; columns the
    schema does not map are left empty), which :func:`read_interactions` reads back exactly.
    For the temporal protocol: the parent's validation rows become the update's input."""
    schema = dataset.schema
    spec = schema.interaction
    fspec = schema.files[spec.file]
    if dataset.location is None:
        raise ValueError("the data set has no location to copy the header from")
    with open(Path(dataset.location.directory) / spec.file, encoding=fspec.encoding) as fh:
        header = fh.readline().rstrip("\r\n").lstrip("\ufeff") if fspec.header else None
    names = [h.split(":", 1)[0] if fspec.format == "atomic" else h for h in header.split(fspec.sep)] \
        if header is not None else list(fspec.columns or ())
    inter = dataset.interactions
    rows = np.asarray(rows, dtype=np.int64)
    users = dataset.nodes[schema.user_type].ids[inter.src[rows]]
    items = dataset.nodes[schema.item_type].ids[inter.dst[rows]]
    cols: dict[str, list[str]] = {spec.src_col: [str(x) for x in users], spec.dst_col: [str(x) for x in items]}
    if spec.weight is not None and inter.weight is not None:
        cols[spec.weight] = [repr(float(x)) for x in inter.weight[rows]]
    if spec.timestamp is not None and inter.timestamp is not None:
        cols[spec.timestamp] = [repr(float(x)) for x in inter.timestamp[rows]]
    empty = [""] * len(rows)
    lines = [fspec.sep.join(parts) for parts in zip(*(cols.get(n, empty) for n in names))]
    path = Path(path)
    path.write_text(((header + "\n") if header is not None else "") + "".join(line + "\n" for line in lines),
                    encoding=fspec.encoding)
    return path

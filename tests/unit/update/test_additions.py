"""What an update adds and drops (kgrec.update.additions), the updated split, the data set
extended with new nodes, the additions file loaded back (kgrec.rundir.load.apply_additions),
and the readers of an interactions file and of an exposure log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.data.splits import Split
from kgrec.errors import ChecksumError, DataError
from kgrec.rundir.load import apply_additions, read_additions
from kgrec.update.additions import (HELD_REASON, REPEAT_REASON, TRAIN_REASON, TWIN_REASON, RawRows,
                                    additions_payload, plan_additions, read_exposure_log, read_interactions,
                                    write_interactions)


def row_of(ds, user: str, item: str) -> int:
    inter = ds.interactions
    u = ds.nodes["user"].index()[user]
    i = ds.nodes["item"].index()[item]
    return int(np.flatnonzero((inter.src == u) & (inter.dst == i))[0])


@pytest.fixture()
def split(tiny) -> Split:
    valid = np.array(sorted([row_of(tiny, "u1", "i5"), row_of(tiny, "u2", "i6")]))
    test = np.array(sorted([row_of(tiny, "u3", "i4"), row_of(tiny, "u4", "i3")]))
    train = np.setdiff1d(np.arange(len(tiny.interactions)), np.r_[valid, test])
    return Split(train, valid, test)


def raw(rows: list[tuple[str, str, float]], file: str = "add.tsv") -> RawRows:
    return RawRows(np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=object),
                   np.array([r[2] for r in rows], dtype=np.float64), np.full(len(rows), 4.0), file, "user_id/item_id",
                   lines=np.arange(2, 2 + len(rows)))


ROWS = [("u1", "i5", 125.0),   # = a validation row: moved
        ("u3", "i4", 178.0),   # = a test row: moved
        ("u2", "i6", 999.0),   # a validation pair at another time: dropped
        ("u1", "i1", 100.0),   # already training: dropped
        ("u9", "i1", 300.0),   # new user: appended
        ("u9", "i7", 310.0),   # new item: appended
        ("u9", "i1", 320.0),   # repeat of an added pair: dropped
        (" u1", "i2", 330.0),  # whitespace twin of u1: dropped
        ("u1", "i5", 125.0),   # repeat of the moved row: dropped
        ("u4", "i1", 400.0)]   # known user and item: appended


def test_plan_moves_appends_and_counts_every_drop(tiny, split) -> None:
    plan = plan_additions(tiny, split, raw(ROWS))
    assert plan.read == 10
    assert plan.moved.tolist() == sorted([row_of(tiny, "u1", "i5"), row_of(tiny, "u3", "i4")])
    assert plan.moved_from == {"valid": 1, "test": 1}
    assert plan.appended.users.tolist() == ["u9", "u9", "u4"]
    assert plan.appended.items.tolist() == ["i1", "i7", "i1"]
    assert plan.new_users == ["u9"] and plan.new_items == ["i7"]
    u0, i0 = tiny.num_users, tiny.num_items
    assert plan.table.src.tolist() == [u0, u0, tiny.nodes["user"].index()["u4"]]
    assert plan.table.dst.tolist() == [tiny.nodes["item"].index()["i1"], i0, tiny.nodes["item"].index()["i1"]]
    assert plan.table.timestamp.tolist() == [300.0, 310.0, 400.0]
    by_reason = {w.reason: (w.count, w.line) for w in plan.warnings}
    assert by_reason[TWIN_REASON] == (1, 9)
    assert by_reason[REPEAT_REASON] == (2, 8)
    assert by_reason[TRAIN_REASON] == (1, 5)
    assert by_reason[HELD_REASON.format(part="valid")] == (1, 4)
    assert plan.dropped == 5 == plan.read - len(plan.moved) - len(plan.appended)  # nothing lost silently


def test_without_timestamps_a_held_out_pair_moves(tiny, split) -> None:
    import dataclasses

    from kgrec.graphs.dataset import EdgeTable

    inter = tiny.interactions
    untimed = dataclasses.replace(tiny, edges={**tiny.edges, tiny.interaction_type: EdgeTable(
        inter.src, inter.dst, inter.weight, None)})
    rows = raw([("u2", "i6", 999.0), ("u9", "i1", 1.0)])
    rows.timestamp = None
    plan = plan_additions(untimed, split, rows)
    assert plan.moved.tolist() == [row_of(tiny, "u2", "i6")] and not plan.warnings
    assert plan.table.timestamp is None and len(plan.appended) == 1


def test_updated_split_and_extended_data_set(tiny, split) -> None:
    plan = plan_additions(tiny, split, raw(ROWS))
    n = len(tiny.interactions)
    ds = tiny.with_additions(plan.new_users, plan.new_items, plan.table, plan.item_text)
    new = split.updated(ds, plan.moved, np.arange(n, len(ds.interactions)))
    assert len(ds.interactions) == n + 3
    assert set(new.train) == set(split.train) | set(plan.moved) | {n, n + 1, n + 2}
    assert set(new.valid) == set(split.valid) - set(plan.moved) and len(new.valid) == 1
    assert set(new.test) == set(split.test) - set(plan.moved) and len(new.test) == 1
    users, items = ds.nodes["user"], ds.nodes["item"]
    assert users.ids.tolist() == [*tiny.nodes["user"].ids.tolist(), "u9"]
    assert items.ids.tolist() == [*tiny.nodes["item"].ids.tolist(), "i7"]
    assert np.isnan(users.features["age"][-1]) and users.features["gender"][-1] == -1
    assert users.features["bio"][-1] == ""
    assert items.features["genres"][-1].sum() == 0 and items.text[-1] == "" and users.text[-1] == ""
    assert tiny.num_users == users.num - 1  # the original is not changed


def test_cold_items_with_training_rows_are_no_longer_cold(tiny) -> None:
    i5 = tiny.nodes["item"].index()["i5"]
    held = np.flatnonzero(tiny.interactions.dst == i5)
    split = Split(np.setdiff1d(np.arange(len(tiny.interactions)), held), held[:1], held[1:],
                  cold_items=np.array([i5]))
    new = split.updated(tiny, held[:1], np.empty(0, np.int64))
    assert new.cold_items.tolist() == [] and held[0] in new.train


def test_additions_file_round_trip(tiny, split, tmp_path) -> None:
    plan = plan_additions(tiny, split, raw(ROWS))
    ds = tiny.with_additions(plan.new_users, plan.new_items, plan.table, plan.item_text)
    base = {"interactions": len(tiny.interactions), "users": tiny.num_users, "items": tiny.num_items}
    payload = json.loads(json.dumps(additions_payload(ds, plan, None, base)))
    back = apply_additions(tiny, payload, tmp_path / "additions.json")
    for name in ("user", "item"):
        assert back.nodes[name].ids.tolist() == ds.nodes[name].ids.tolist()
    for attr in ("src", "dst", "timestamp", "weight"):
        assert np.array_equal(getattr(back.interactions, attr), getattr(ds.interactions, attr)), attr
    # a second update appends to the first one's additions
    more = plan_additions(ds, split.updated(ds, plan.moved, np.arange(len(tiny.interactions), len(ds.interactions))),
                          raw([("u9", "i2", 500.0), ("u10", "i7", 510.0)]))
    ds2 = ds.with_additions(more.new_users, more.new_items, more.table, more.item_text)
    again = apply_additions(tiny, json.loads(json.dumps(additions_payload(ds2, more, payload, base))), "a.json")
    assert again.nodes["user"].ids.tolist()[-2:] == ["u9", "u10"]
    assert np.array_equal(again.interactions.dst, ds2.interactions.dst)


def test_additions_that_do_not_fit_are_data_errors(tiny, split, tmp_path) -> None:
    plan = plan_additions(tiny, split, raw(ROWS))
    ds = tiny.with_additions(plan.new_users, plan.new_items, plan.table, plan.item_text)
    good = additions_payload(ds, plan, None, {"interactions": len(tiny.interactions), "users": tiny.num_users,
                                               "items": tiny.num_items})
    bad = json.loads(json.dumps(good))
    bad["base"]["interactions"] += 1
    with pytest.raises(DataError) as err:
        apply_additions(tiny, bad, tmp_path / "additions.json")
    assert err.value.field == "base.interactions" and err.value.file.endswith("additions.json")
    bad = json.loads(json.dumps(good))
    bad["interactions"]["user"][0] = "nobody"
    with pytest.raises(DataError, match="nobody"):
        apply_additions(tiny, bad, "additions.json")
    bad = json.loads(json.dumps(good))
    bad["users"] = ["u1"]  # not new
    with pytest.raises(DataError) as err:
        apply_additions(tiny, bad, "additions.json")
    assert err.value.field == "users"
    (tmp_path / "additions.json").write_text(json.dumps(good))
    with pytest.raises(ChecksumError):
        read_additions(tmp_path, {"additions": {"sha256": "0" * 64}})


def write(path, text: str):
    path.write_text(text)
    return path


def test_interactions_file_read_with_the_loaders_rules(tiny, tmp_path) -> None:
    path = write(tmp_path / "new.tsv", "user_id\titem_id\trating\tts\nu1\ti4\t4\t300\n\nu9\ti1\t5\t301.5\n")
    rows, blank = read_interactions(path, tiny.schema)
    assert rows.users.tolist() == ["u1", "u9"] and rows.items.tolist() == ["i4", "i1"]
    assert rows.timestamp.tolist() == [300.0, 301.5] and rows.weight.tolist() == [4.0, 5.0]
    assert rows.lines.tolist() == [2, 4]
    assert [(w.count, w.line, w.reason) for w in blank] == [(1, 3, "blank line")]


@pytest.mark.parametrize("text,line,field", [
    ("user_id\titem_id\trating\tts\nu1\ti4\t4\t300\nu1\ti2\t4\tsoon\n", 3, "ts"),
    ("user_id\titem_id\trating\tts\nu1\ti4\t9\t300\n", 2, "rating"),
    ("user_id\titem_id\trating\tts\nu1\ti4\t4\t-5\n", 2, "ts"),
    ("user_id\titem_id\trating\tts\n\ti4\t4\t300\n", 2, "user_id/item_id"),
    ("user_id\titem_id\tstars\tts\nu1\ti4\t4\t300\n", 1, "columns"),
    ("user_id\titem_id\trating\tts\nu1\ti4\t4\n", 2, "ts"),
])
def test_bad_interactions_file_names_file_line_and_field(tiny, tmp_path, text, line, field) -> None:
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(DataError) as err:
        read_interactions(path, tiny.schema)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field), str(err.value)
    assert err.value.exit_code == 4


def test_write_interactions_reads_back_exactly(tiny, tmp_path) -> None:
    rows = np.array([0, 5, 17])
    path = write_interactions(tmp_path / "out.tsv", tiny, rows)
    back, _ = read_interactions(path, tiny.schema)
    inter = tiny.interactions
    assert back.users.tolist() == tiny.nodes["user"].ids[inter.src[rows]].tolist()
    assert back.items.tolist() == tiny.nodes["item"].ids[inter.dst[rows]].tolist()
    assert back.timestamp.tolist() == inter.timestamp[rows].tolist()
    assert back.weight.astype(np.float32).tolist() == inter.weight[rows].tolist()


def test_exposure_log_clicks_fold_in_users_and_added_items(tiny, split, tmp_path) -> None:
    from kgrec.serve.log import Exposure, ExposureLog, Feedback, ServedRequest

    def served(rid, ts, user, shown, history=None):
        return ServedRequest(request_id=rid, ts=ts, user_id=user, history=history, policy="greedy",
                             items=[Exposure(p, item, None, None, 1.0) for p, item in enumerate(shown)])

    with ExposureLog.open(tmp_path / "log") as log:
        log.log_item("i7new", {"item_id": "i7new", "text": "A new record", "links": {"linked_to": ["e:davis"]}})
        log.log_request(served("r1", 500.0, "u1", ["i2", "i4"]))
        log.log_feedback(Feedback(request_id="r1", item_id="i4", event="click", value=1.0, ts=505.0))
        log.log_feedback(Feedback(request_id="r1", item_id="i4", event="click", value=1.0, ts=509.0))  # again
        log.log_feedback(Feedback(request_id="r1", item_id="i2", event="dismiss", ts=506.0))  # not a click
        log.log_request(served("r2", 600.0, None, ["i3", "i7new"], history=["i1", "i9", "i1", "i6"]))
        log.log_feedback(Feedback(request_id="r2", item_id="i7new", event="click", ts=610.0))
        log.log_request(served("r3", 700.0, "zz", ["i1"]))
        log.log_feedback(Feedback(request_id="r3", item_id="i1", event="click", ts=701.0))
        log.log_request(served("r4", 800.0, "u2", ["i8"]))
        log.log_feedback(Feedback(request_id="r4", item_id="i8", event="click", ts=801.0))
        log.log_request(served("r5", 900.0, None, ["i2"], history=["i9"]))
    users = set(tiny.nodes["user"].ids.tolist())
    items = set(tiny.nodes["item"].ids.tolist())
    rows, added, warnings, read = read_exposure_log(tmp_path / "log", users=users, items=items)
    assert list(zip(rows.users.tolist(), rows.items.tolist(), rows.timestamp.tolist())) == [
        ("u1", "i4", 505.0), ("log:r2", "i1", 600.0), ("log:r2", "i6", 600.0), ("log:r2", "i7new", 610.0)]
    assert added.ids == ["i7new"] and added.text == ["A new record"]
    counts = {w.field + ": " + w.reason.split(" (")[0]: w.count for w in warnings}
    assert counts == {
        "items.payload.links: KG links of items added while serving are not carried into the new run": 1,
        "feedback.item_id: click on an item neither in the run nor added while serving": 1,
        "requests.user_id: click of a user_id the run does not know": 1,
        "requests.history: history item neither in the run nor added while serving": 2,
        "requests.history: item repeated within one history": 1,
        "requests.history: fold-in request without any known item": 1}
    assert read["requests"] == 5 and read["fold_in_users"] == 1 and read["rewarded"] == 4
    plan = plan_additions(tiny, split, rows, added)
    assert plan.new_users == ["log:r2"] and plan.new_items == ["i7new"] and plan.item_text == ["A new record"]
    assert len(plan.appended) == 4 and not plan.warnings
    # purchases instead of clicks: nothing but the fold-in history
    rows, _, _, _ = read_exposure_log(tmp_path / "log", users=users, items=items, events=("purchase",))
    assert rows.users.tolist() == ["log:r2", "log:r2"]


def test_items_added_without_interactions_are_new_cold_items(tiny, split) -> None:
    from kgrec.update.additions import AddedItems

    empty = raw([])
    plan = plan_additions(tiny, split, empty, AddedItems(["i8", " i1", "i1"], ["eight", "twin", "known"]))
    assert plan.new_items == ["i8"] and plan.item_text == ["eight"] and len(plan.appended) == 0
    assert [(w.field, w.count) for w in plan.warnings] == [("items.item_id", 1)]  # the twin, counted
    ds = tiny.with_additions(plan.new_users, plan.new_items, plan.table, plan.item_text)
    assert ds.nodes["item"].ids.tolist()[-1] == "i8" and ds.nodes["item"].text[-1] == "eight"

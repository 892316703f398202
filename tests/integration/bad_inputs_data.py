"""Bad-input cases 1-7: missing files, wrong headers, bad encodings, dangling ids, duplicates,
bad ratings and empty files (see ``bad_inputs_core.py`` for how a case is declared)."""

from __future__ import annotations

import shutil

from bad_inputs_core import EXIT_DATA, EXIT_SCHEMA, Prepared, Workspace, case


# 1. missing data file ----------------------------------------------------------
@case("missing-data-file", "1 missing file", "friends.tsv deleted", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("friends.tsv").unlink()
    return Prepared(ws.validate(), file="friends.tsv", field="files.friends.tsv", also=["file not found"])


@case("missing-data-dir", "1 missing file", "--data-dir names no directory", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    shutil.rmtree(ws.data)
    return Prepared(ws.validate(), file="data", field="data_dir", also=["does not exist (--data-dir)"])


@case("missing-schema-file", "1 missing file", "the schema path does not exist", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    ws.schema.unlink()
    return Prepared(ws.validate(), file="tiny.yaml", also=["schema file not found"])


# 2. wrong header ---------------------------------------------------------------
@case("renamed-node-column", "2 wrong header", "items.tsv header: genres -> genre", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("items.tsv", "\tgenres\t", "\tgenre\t")
    return Prepared(ws.validate(), file="items.tsv", line=line, field="nodes.item.features.genres",
                    also=["column 'genres' not in header"])


@case("renamed-edge-column", "2 wrong header", "friends.tsv header: friend_id -> friend (data info)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("friends.tsv", "friend_id", "friend")
    return Prepared(ws.info(), file="friends.tsv", line=line, field="edges.friend.columns.dst",
                    also=["column 'friend_id' not in header"])


@case("header-vs-columns", "2 wrong header", "ratings.tsv header differs from the declared columns list",
      EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("ratings.tsv", "\trating\t", "\tscore\t")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="columns",
                    also=["does not match the schema's columns", "'score'"])


# 3. bad encoding ---------------------------------------------------------------
@case("non-utf8-default", "3 encoding", "0xFF byte in users.tsv (utf-8 by default)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("users.tsv", 4, "bio", b"film \xff buff")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="encoding", also=["not valid utf-8"])


@case("non-utf8-declared", "3 encoding", "Latin-1 'Caf\\xe9' in items.tsv declared encoding: utf-8", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "items.tsv: {format: tsv}", "items.tsv: {format: tsv, encoding: utf-8}")
    line = ws.n_lines("items.tsv")  # the last row
    ws.set_field("items.tsv", line, "title", "Café Society".encode("latin-1"))
    return Prepared(ws.validate(), file="items.tsv", line=line, field="encoding",
                    also=["not valid utf-8", r"b'\xe9'"])


# 4. dangling ids ---------------------------------------------------------------
@case("dangling-item", "4 dangling id", "two ratings of item i9 (not in items.tsv)", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 5, "item_id", "i9")
    ws.set_field("ratings.tsv", 12, "item_id", "i9")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="item_id", count=2,
                    also=["dropped", "dangling"])


@case("dangling-entity", "4 dangling id", "KG edge to unknown entity e:parker (data info)", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("kg.tsv", "e:davis\tplayed_with\te:parker")
    return Prepared(ws.info(), file="kg.tsv", line=line, field="tail", count=1, also=["dropped", "dangling"])


# 5. duplicate edges ------------------------------------------------------------
@case("duplicate-edges", "5 duplicates", "two repeated friend pairs", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("friends.tsv", "u1\tu2", "u3\tu5")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="edges.friend", count=2,
                    also=["dropped", "duplicate (user_id, friend_id) pair (first row kept)"])


@case("duplicate-rating", "5 duplicates", "u1 rates i1 twice", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("ratings.tsv", "u1\ti1\t3\t300")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="edges.rated", count=1,
                    also=["duplicate (user_id, item_id) pair (first row kept)"])


@case("duplicate-edges-error", "5 duplicates", "two repeated friend pairs with duplicates: error", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.insert_after("tiny.yaml", "columns: {src: user_id, dst: friend_id}", "    duplicates: error")
    line = ws.append("friends.tsv", "u1\tu2", "u3\tu5")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="edges.friend",
                    also=["duplicate (user_id, friend_id) pair", "2 duplicates"])


# 6. bad weights ----------------------------------------------------------------
@case("nan-rating", "6 bad rating", "ratings NaN and nan", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 3, "rating", "NaN")
    ws.set_field("ratings.tsv", 10, "rating", "nan")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=2,
                    also=["dropped", "missing or NaN"])


@case("rating-out-of-range", "6 bad rating", "ratings 7, 0 and -1 with weight_range [1, 5]", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 6, "rating", "7")
    ws.set_field("ratings.tsv", 9, "rating", "0")
    ws.set_field("ratings.tsv", 14, "rating", "-1")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=3,
                    also=["dropped", "outside weight_range [1, 5]"])


@case("rating-garbage", "6 bad rating", "ratings 'abc' and '4.0x'", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 8, "rating", "abc")
    ws.set_field("ratings.tsv", 11, "rating", "4.0x")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=2,
                    also=["dropped", "not a number (first: 'abc')"])


@case("timestamp-garbage", "6 bad rating", "timestamp 'yesterday'", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("ratings.tsv", 15, "ts", "yesterday")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", count=1,
                    also=["dropped", "not a number (first: 'yesterday')"])


@case("age-out-of-range", "6 bad rating", "user age 151 (feature max 120)", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("users.tsv", 4, "age", "151")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="age", count=1,
                    also=["set to missing", "outside [0.0, 120.0]"])


# 7. empty files ----------------------------------------------------------------
@case("empty-file", "7 empty file", "users.tsv is 0 bytes", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("users.tsv").write_bytes(b"")
    return Prepared(ws.validate(), file="users.tsv", line=1, field="users.tsv", also=["file is empty"])


@case("blank-lines-only", "7 empty file", "friends.tsv holds only newlines", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("friends.tsv").write_bytes(b"\n\n\n")
    return Prepared(ws.validate(), file="friends.tsv", line=1, field="friends.tsv", also=["file is empty"])


@case("header-only", "7 empty file", "ratings.tsv has its header and no rows", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("ratings.tsv").write_bytes(ws.lines("ratings.tsv")[0] + b"\n")
    # the first row would be on line 2, just past the header
    return Prepared(ws.validate(), file="ratings.tsv", line=ws.n_lines("ratings.tsv") + 1, field="ratings.tsv",
                    also=["header but no rows"])

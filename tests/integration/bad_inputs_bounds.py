"""Bad-input cases 13-16: bounded YAML, data paths that leave the data directory, values that
are never changed silently, and typed ``source`` entries and schema names (see
``bad_inputs_core.py`` for how a case is declared)."""

from __future__ import annotations

import re

from bad_inputs_core import EXIT_DATA, EXIT_SCHEMA, Prepared, Workspace, case

ALLOW_ENV = "KGREC_ALLOW_OUTSIDE_PATHS"


# 13. bounded YAML ---------------------------------------------------------------
@case("yaml-billion-laughs", "13 bounded yaml", "nine levels of nested aliases (10^8 'lol's if expanded)",
      EXIT_SCHEMA, max_seconds=10)
def _(ws: Workspace) -> Prepared:
    first = ws.insert_after("tiny.yaml", "license:", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]")
    for i in range(1, 9):
        ws.insert_line("tiny.yaml", first + i, f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=first + 1, field="a1[0]",
                    also=["YAML alias '*a0' is not allowed"])


@case("yaml-merge-key", "13 bounded yaml", "a '<<: *anchor' merge key in an edge", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "    columns: {src: user_id, dst: friend_id}",
               "    columns: &pair {src: user_id, dst: friend_id}")
    line = ws.insert_after("tiny.yaml", "    columns: {src: item_id, dst: entity_id}", "    <<: *pair")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.linked_to.<<",
                    also=["YAML alias '*pair' is not allowed"])


@case("yaml-deep-nesting", "13 bounded yaml", "citation: 200 nested lists", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_after("tiny.yaml", "license:", "citation: " + "[" * 200 + "]" * 200)
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="citation[0][0][0]...[0][0]",
                    also=["nesting deeper than 64 levels"])


@case("yaml-nul", "13 bounded yaml", "a NUL byte in the description", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "description: Five users,", "description: Five\x00 users,")
    column = ws.lines("tiny.yaml")[line - 1].index(b"\x00") + 1
    return Prepared(ws.validate(), file="tiny.yaml", line=line, also=[f"a NUL character (\\x00) at column {column}"])


# 14. data paths stay inside the data directory -----------------------------------
@case("file-absolute-path", "14 data paths", "files: /etc/passwd (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_after("tiny.yaml", "  kg.tsv: {format: tsv}", "  /etc/passwd: {format: tsv}")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="files./etc/passwd", also=["is an absolute path", f"{ALLOW_ENV}=1"])


@case("file-dotdot-path", "14 data paths", "friends.tsv declared as ../friends.tsv", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "  friends.tsv: {format: tsv}", "  ../friends.tsv: {format: tsv}")
    ws.replace("tiny.yaml", "file: friends.tsv", "file: ../friends.tsv")
    (ws.root / "friends.tsv").write_bytes(ws.path("friends.tsv").read_bytes())
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="files.../friends.tsv",
                    also=["climbs out of the data directory with '..'", f"{ALLOW_ENV}=1"])


@case("file-symlink-escape", "14 data paths", "data/kg.tsv is a symlink to ../elsewhere/kg.tsv", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    ws.move_out("kg.tsv")
    return Prepared(ws.validate(), file="tiny.yaml", line=ws.find("tiny.yaml", "  kg.tsv: {"), field="files.kg.tsv",
                    also=["(through a symlink), outside the data directory", f"{ALLOW_ENV}=1"])


@case("file-is-directory", "14 data paths", "data/links.tsv is a directory", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("links.tsv").unlink()
    ws.path("links.tsv").mkdir()
    return Prepared(ws.validate(), file="links.tsv", field="files.links.tsv", also=["is a directory, not a data file"])


@case("file-symlink-loop", "14 data paths", "data/links.tsv is a symlink to itself", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.path("links.tsv").unlink()
    ws.path("links.tsv").symlink_to("links.tsv")
    return Prepared(ws.validate(), file="links.tsv", field="files.links.tsv", also=["symlink loop"])


@case("schema-is-directory", "14 data paths", "the schema path tiny.yaml is a directory", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    ws.schema.unlink()
    ws.schema.mkdir()
    return Prepared(ws.validate(), file="tiny.yaml", also=["is a directory, not a schema file"])


# 15. values never changed silently -----------------------------------------------
@case("rating-not-finite", "15 values", "ratings inf and 1e400 (overflows to inf)", warning=True)
def _(ws: Workspace) -> Prepared:
    first = ws.set_field("ratings.tsv", 4, "rating", "inf")
    ws.set_field("ratings.tsv", 13, "rating", "1e400")
    return Prepared(ws.validate(), file="ratings.tsv", line=first, field="rating", count=2,
                    also=["dropped", "not finite (first: 'inf')"])


@case("rating-beyond-float32", "15 values", "rating 1e39 (weights are float32)", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("ratings.tsv", 7, "rating", "1e39")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="rating", count=1,
                    also=["dropped", "beyond the float32 range"])


@case("rating-negative-no-range", "15 values", "rating -2 and no weight_range", warning=True)
def _(ws: Workspace) -> Prepared:
    ws.set_line("tiny.yaml", ws.find("tiny.yaml", "weight_range: [1, 5]"), "    duplicates: first")
    line = ws.set_field("ratings.tsv", 6, "rating", "-2")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="rating", count=1,
                    also=["dropped", "negative weight", "weight_range"])


@case("timestamp-not-finite", "15 values", "timestamp -inf", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("ratings.tsv", 11, "ts", "-inf")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", count=1,
                    also=["dropped", "not finite (first: '-inf')"])


@case("timestamp-negative", "15 values", "timestamp -100", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("ratings.tsv", 12, "ts", "-100")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", count=1,
                    also=["dropped", "negative timestamp (first: '-100')"])


@case("social-self-loop", "15 values", "friends.tsv has u4 -> u4", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("friends.tsv", "u4\tu4")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="user_id/friend_id", count=1,
                    also=["dropped", "self-loop"])


@case("id-whitespace-twin", "15 values", "users.tsv has ' u1' next to 'u1'", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.append("users.tsv", " u1\t23\tF\tlikes jazz")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="user_id", count=1,
                    also=["dropped", "equal to another but for surrounding whitespace or Unicode normalisation "
                                               "(first: ' u1')"])


@case("feature-not-finite", "15 values", "user age 1e400", warning=True)
def _(ws: Workspace) -> Prepared:
    line = ws.set_field("users.tsv", 3, "age", "1e400")
    return Prepared(ws.validate(), file="users.tsv", line=line, field="age", count=1,
                    also=["set to missing", "not finite (first: '1e400')"])


@case("sep-never-occurs", "15 values", "genres declared with sep ';' but written with '|'", warning=True)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", 'genres: {type: multicategorical, sep: "|"}', 'genres: {type: multicategorical, sep: ";"}')
    genres = [ln.split(b"\t")[2] for ln in ws.lines("items.tsv")[1:] if ln]
    split = [i for i, g in enumerate(genres) if re.search(rb"[|,]|\s", g.strip())]
    return Prepared(ws.validate(), file="items.tsv", line=2 + split[0], field="genres", count=len(split),
                    also=["not split", "sep ';' never occurs"])


# 16. typed source entries, schema names -------------------------------------------
@case("source-sha256-number", "16 schema types", "source pip sha256: 12345 (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_after("tiny.yaml", "env: KGREC_TINY_DIR", "  pip: {requirement: tiny==1.0, sha256: 12345}")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="source.pip.sha256", also=["expected str, got 12345"])


@case("source-url-number", "16 schema types", "source url: 5 (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_after("tiny.yaml", "env: KGREC_TINY_DIR", "  url: 5")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line, field="source.url",
                    also=["expected a mapping, got int"])


@case("source-href-number", "16 schema types", "source url href: 404 (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_after("tiny.yaml", "env: KGREC_TINY_DIR", "  url: {href: 404}")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="source.url.href", also=["expected str, got 404"])


@case("file-settings-list", "16 schema types", "users.tsv: [tsv] (a list where a mapping belongs)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "users.tsv: {format: tsv}", "users.tsv: [tsv]")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="files.users.tsv", also=["expected a mapping, got list"])


@case("schema-name-mismatch", "16 schema types", "tiny.yaml says name: tiny-data", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "name: tiny", "name: tiny-data")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line, field="name",
                    also=["name 'tiny-data' does not match the file name 'tiny.yaml'"])

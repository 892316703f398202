"""Bad-input cases 8-12: schema errors, checksums, fetching without network or cache, wrong
field counts and unknown data set names (see ``bad_inputs_core.py``)."""

from __future__ import annotations

import re

from bad_inputs_core import (BAD_SHA256, EXIT_CHECKSUM, EXIT_DATA, EXIT_FETCH, EXIT_SCHEMA, UNREACHABLE_URL, Prepared,
                             Workspace, case)


# 8. schema errors --------------------------------------------------------------
def _edge_line(ws: Workspace, edge: str, key: str) -> int:
    """The line of ``key`` inside the block of edge ``edge`` in the copied schema."""
    lines = [ln.decode() for ln in ws.lines("tiny.yaml")]
    start = lines.index(f"  {edge}:")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith(f"    {key}:"):
            return i + 1
        if not lines[i].startswith("    "):
            break
    raise ValueError(f"no {key} in edge {edge}")


@case("unknown-node-type", "8 schema", "edge rated has src: usr", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "src")
    ws.set_line("tiny.yaml", line, "    src: usr")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.src",
                    also=["unknown node type 'usr'", "did you mean 'user'"])


@case("yaml-key-typo-edge", "8 schema", "edge rated has colums: instead of columns:", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "columns")
    ws.replace("tiny.yaml", "    columns: {src: user_id, dst: item_id", "    colums: {src: user_id, dst: item_id")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.colums",
                    also=["unknown key 'colums'", "did you mean 'columns'"])


@case("yaml-key-typo-file", "8 schema", "files.ratings.tsv has colums: (--schema-only)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "ratings.tsv: {format: tsv, columns:", "ratings.tsv: {format: tsv, colums:")
    return Prepared(ws.validate("--schema-only", data_dir=False), file="tiny.yaml", line=line,
                    field="files.ratings.tsv.colums", also=["did you mean 'columns'"])


@case("unlisted-relation", "8 schema", "kg edge lists relations: [played_with, influenced]; 'genre' rows",
      warning=True)
def _(ws: Workspace) -> Prepared:
    ws.insert_after("tiny.yaml", "columns: {src: head, relation: relation, dst: tail}",
                    "    relations: [played_with, influenced]")
    rows = [ln.split(b"\t")[1] for ln in ws.lines("kg.tsv")[1:] if ln]
    first = 2 + rows.index(b"genre")
    return Prepared(ws.validate(), file="kg.tsv", line=first, field="relation", count=rows.count(b"genre"),
                    also=["dropped", "relation type not listed"])


@case("yaml-syntax", "8 schema", "description: Five users: six items (a second ': ')", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "description: Five users,", "description: Five users:")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, also=["invalid YAML", "mapping values"])


@case("yaml-tab-indent", "8 schema", "a tab indents the gender feature", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "      gender: {type: categorical}", "\tgender: {type: categorical}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, also=["invalid YAML", "'\\t'"])


@case("yaml-duplicate-key", "8 schema", "edge rated has src: twice", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.insert_line("tiny.yaml", _edge_line(ws, "rated", "src") + 1, "    src: item")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="src", also=["duplicate key 'src'"])


@case("yaml-unclosed-bracket", "8 schema", "weight_range: [1, 5 (unclosed; the error surfaces a line later)",
      EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "weight_range: [1, 5]", "weight_range: [1, 5")
    return Prepared(ws.validate(), file="tiny.yaml", also=["invalid YAML",
                                                           re.compile(rf"tiny\.yaml:{line}\b|line {line}\b")])


@case("yaml-unclosed-quote", "8 schema", "env: \"KGREC_TINY_DIR (unclosed quote; surfaces 18 lines later)",
      EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "env: KGREC_TINY_DIR", 'env: "KGREC_TINY_DIR')
    return Prepared(ws.validate(), file="tiny.yaml", also=["invalid YAML",
                                                           re.compile(rf"tiny\.yaml:{line}\b|line {line}\b")])


@case("unknown-feature-type-typo", "8 schema", "gender: {type: categorial}", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "gender: {type: categorical}", "gender: {type: categorial}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.gender.type",
                    also=["unknown value 'categorial'", "did you mean 'categorical'"])


@case("unknown-feature-type", "8 schema", "gender: {type: image}", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "gender: {type: categorical}", "gender: {type: image}")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.gender.type",
                    also=["unknown value 'image'", "expected one of: categorical, multicategorical"])


@case("unknown-role", "8 schema", "role: interation", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "role: interaction", "role: interation")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.role",
                    also=["did you mean 'interaction'"])


@case("node-type-as-list", "8 schema", "src: [user] (a list where a node type name belongs)", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "src")
    ws.set_line("tiny.yaml", line, "    src: [user]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.src")


@case("edge-file-as-list", "8 schema", "file: [ratings.tsv] in edge rated", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = _edge_line(ws, "rated", "file")
    ws.set_line("tiny.yaml", line, "    file: [ratings.tsv]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.file")


@case("weight-range-not-numeric", "8 schema", "weight_range: [1, high]", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "weight_range: [1, 5]", "weight_range: [1, high]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="edges.rated.weight_range")


@case("bins-not-numeric", "8 schema", "age bins: [30, old]", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    line = ws.replace("tiny.yaml", "bins: [30, 45]", "bins: [30, old]")
    return Prepared(ws.validate(), file="tiny.yaml", line=line, field="nodes.user.features.age.bins")


# 9. checksum -------------------------------------------------------------------
@case("checksum-mismatch", "9 checksum", "wrong sha256 for users.tsv in the schema", EXIT_CHECKSUM)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "users.tsv: {format: tsv}", f"users.tsv: {{format: tsv, sha256: {BAD_SHA256}}}")
    return Prepared(ws.validate(), file="users.tsv", field="files.users.tsv.sha256",
                    also=[f"expects {BAD_SHA256}", "tiny.yaml"])


@case("checksum-mismatch-fetch", "9 checksum", "wrong sha256 for kg.tsv, data fetch --data-dir", EXIT_CHECKSUM)
def _(ws: Workspace) -> Prepared:
    ws.replace("tiny.yaml", "kg.tsv: {format: tsv}", f"kg.tsv: {{format: tsv, sha256: {BAD_SHA256}}}")
    return Prepared(ws.fetch("--data-dir", str(ws.data)), file="kg.tsv", field="files.kg.tsv.sha256",
                    also=[f"expects {BAD_SHA256}"])


# 10. no network, no cache ------------------------------------------------------
def _url_source(ws: Workspace, keep_env: bool = False) -> None:
    if keep_env:
        ws.insert_after("tiny.yaml", "env: KGREC_TINY_DIR", f"  url: {{href: {UNREACHABLE_URL}}}")
    else:
        ws.replace("tiny.yaml", "env: KGREC_TINY_DIR", f"url: {{href: {UNREACHABLE_URL}}}")


@case("fetch-no-network", "10 fetch", "source url unreachable, empty cache", EXIT_FETCH)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=[f"could not download {UNREACHABLE_URL}", "no cached copy of 'tiny'", "--data-dir"])


@case("fetch-offline", "10 fetch", "KGREC_OFFLINE=1, empty cache", EXIT_FETCH, offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=["no cached copy of 'tiny'", "KGREC_OFFLINE", "--data-dir"])


@case("fetch-offline-env-hint", "10 fetch", "KGREC_OFFLINE=1, schema has env KGREC_TINY_DIR (unset)",
      EXIT_FETCH, offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws, keep_env=True)
    return Prepared(ws.fetch(), file="tiny.yaml", field="source",
                    also=["KGREC_OFFLINE", "set KGREC_TINY_DIR or pass --data-dir"])


@case("validate-offline", "10 fetch", "data validate without --data-dir, KGREC_OFFLINE=1", EXIT_FETCH,
      offline=True)
def _(ws: Workspace) -> Prepared:
    _url_source(ws)
    return Prepared(ws.validate(data_dir=False), file="tiny.yaml", field="source", also=["KGREC_OFFLINE"])


@case("env-dir-missing", "10 fetch", "KGREC_TINY_DIR points at a missing directory", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    missing = ws.root / "nowhere"
    return Prepared(ws.fetch(), file="nowhere", field="data_dir", also=["does not exist ($KGREC_TINY_DIR)"],
                    env={"KGREC_TINY_DIR": str(missing)})


# 11. wrong field count ---------------------------------------------------------
@case("extra-field", "11 field count", "ratings.tsv row with 5 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("ratings.tsv", 7, ws.lines("ratings.tsv")[6] + b"\textra")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="row", also=["expected 4 fields, saw 5"])


@case("extra-field-after-blank", "11 field count", "a blank line, then a row with 5 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    ws.set_line("ratings.tsv", 4, "")
    line = ws.set_line("ratings.tsv", 9, ws.lines("ratings.tsv")[8] + b"\textra")
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="row", also=["expected 4 fields, saw 5"])


@case("extra-field-first-row", "11 field count", "friends.tsv first row with 3 fields", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("friends.tsv", 2, ws.lines("friends.tsv")[1] + b"\tu3")
    return Prepared(ws.validate(), file="friends.tsv", line=line, field="row", also=["expected 2 fields, saw 3"])


@case("missing-field-edge", "11 field count", "ratings.tsv row with 3 fields (no ts)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("ratings.tsv", 9, b"\t".join(ws.lines("ratings.tsv")[8].split(b"\t")[:3]))
    return Prepared(ws.validate(), file="ratings.tsv", line=line, field="ts", also=["expected 4 fields"])


@case("missing-field-node", "11 field count", "users.tsv row with 3 fields (no bio)", EXIT_DATA)
def _(ws: Workspace) -> Prepared:
    line = ws.set_line("users.tsv", 5, b"\t".join(ws.lines("users.tsv")[4].split(b"\t")[:3]))
    return Prepared(ws.validate(), file="users.tsv", line=line, field="bio", also=["expected 4 fields"])


# 12. unknown data set name -----------------------------------------------------
@case("unknown-dataset-validate", "12 unknown name", "data validate movielens-100kk", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "validate", "movielens-100kk"], field="name",
                    also=["unknown data set 'movielens-100kk'", "did you mean 'movielens-100k'"])


@case("unknown-dataset-info", "12 unknown name", "data info lastfm2k", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "info", "lastfm2k"], field="name", also=["did you mean 'lastfm-2k'"])


@case("unknown-dataset-fetch", "12 unknown name", "data fetch ciao-dvd", EXIT_SCHEMA)
def _(ws: Workspace) -> Prepared:
    return Prepared(["data", "fetch", "ciao-dvd"], field="name", also=["did you mean 'ciaodvd'"])

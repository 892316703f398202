"""Export an exposure log (:mod:`kgrec.serve.log`) as Parquet or CSV files for other tools.

``export_log(LOG_DIR, OUT_DIR)`` writes, into ``OUT_DIR``:

* ``requests``, ``exposures``, ``feedback``, ``items``: the log's tables, as they are;
* ``bandit_feedback``: one row per exposure in Open Bandit Pipeline's vocabulary
  (``context, action, position, reward, pscore``, plus ``request_id, ts, user_id,
  item_index, policy``), ``reward`` = 1 if one of ``events`` (default: ``click``) was logged
  for that request and item;
* ``schema.json``: the schema version, the log's meta, the reward events, and per file its
  name, row count and columns (name, SQL type, meaning, OBP name).

All tables are read in one read transaction, so they are consistent with each other even
while a server keeps writing the log (rows committed later are simply not in the export).
``OUT_DIR`` is written through :class:`kgrec.atomic.AtomicDir`: as ``OUT_DIR.partial``,
renamed into place when complete, so a reader never sees half an export; an existing
``OUT_DIR`` is refused (:class:`~kgrec.errors.RunExistsError`) unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from kgrec.atomic import AtomicDir
from kgrec.errors import UsageError
from kgrec.serve.log import ExposureLog
from kgrec.serve.log_schema import COLUMNS, DB_NAME, FORMAT, SCHEMA_VERSION

FORMATS = ("parquet", "csv")
FILES = ("requests", "exposures", "feedback", "items", "bandit_feedback")


def export_log(directory: str | os.PathLike, out_dir: str | os.PathLike, *, fmt: str = "parquet",
               overwrite: bool = False, events: Iterable[str] | None = ("click",)) -> dict[str, int]:
    """Write the log in ``directory`` as ``fmt`` files into ``out_dir``; the row count of each file."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}", field="fmt")
    directory, out = Path(directory), Path(out_dir)
    log_dir, target = directory.resolve(), out.resolve()
    if target == log_dir or target in log_dir.parents:
        raise UsageError(f"the export directory {out} holds the exposure log {directory / DB_NAME}; exporting "
                         f"there would replace the log", file=str(out), field="out_dir")
    if isinstance(events, str):
        events = (events,)
    events = None if events is None else list(events)
    atomic = AtomicDir(out, overwrite=overwrite, what="export directory")
    with atomic as work:
        log = ExposureLog.open(directory, readonly=True)
        with log.snapshot() as snap:
            meta = snap.meta()
            frames = {"requests": snap.requests(), "exposures": snap.exposures(), "feedback": snap.feedback(),
                      "items": snap.items(), "bandit_feedback": snap.bandit_feedback(events)}
        tables = {}
        for name in FILES:
            frame = frames[name]
            file = f"{name}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(work / file, engine="pyarrow", index=False)
            else:
                frame.to_csv(work / file, index=False)
            tables[name] = {"file": file, "rows": int(len(frame)),
                            "columns": [{"name": c, "type": t, "meaning": m, "obp": o} for c, t, m, o in COLUMNS[name]]}
        schema = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "file_format": fmt,
                  "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "source": str(log_dir / DB_NAME), "reward_events": events, "meta": meta, "tables": tables}
        (work / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        atomic.commit()
    return {name: tables[name]["rows"] for name in FILES}

"""Graph schemas, data sources, readers and the typed data set.

The usual entry point is :func:`load_dataset`::

    ds = load_dataset("movielens-100k")          # fetches into the cache on first use
    data = ds.to_hetero()                         # torch_geometric HeteroData

Data files must stay inside the data directory unless ``allow_outside_paths=True`` or
``KGREC_ALLOW_OUTSIDE_PATHS=1`` (:mod:`kgrec.graphs.paths`).
"""

from __future__ import annotations

import os
from typing import Any

from kgrec.graphs.build import build_dataset
from kgrec.graphs.dataset import EdgeTable, GraphDataset, NodeTable
from kgrec.graphs.registry import list_schemas, schema_path
from kgrec.graphs.schema import Schema, load_schema
from kgrec.graphs.sources import DataLocation, locate

__all__ = ["DataLocation", "EdgeTable", "GraphDataset", "NodeTable", "Schema", "build_dataset", "list_schemas",
           "load_dataset", "load_schema", "locate", "schema_path"]


def load_dataset(name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                 download_ok: bool | None = None, synthetic: dict[str, Any] | None = None,
                 allow_outside_paths: bool = False, schema_name: str | None = None) -> GraphDataset:
    """Load a data set by schema name or YAML path: resolve files, verify, build.

    Data files must lie inside the data directory; ``allow_outside_paths=True`` (or
    ``$KGREC_ALLOW_OUTSIDE_PATHS=1``) accepts absolute names, ``..`` and symlinks leading out.
    ``schema_name`` is the name the schema must declare when it differs from its file name
    (a run directory's ``schema.yaml``).
    """
    schema = load_schema(schema_path(name_or_path), allow_outside_paths=allow_outside_paths, name=schema_name)
    location = locate(schema, data_dir=data_dir, download_ok=download_ok, synthetic=synthetic,
                      allow_outside_paths=allow_outside_paths)
    return build_dataset(schema, location)

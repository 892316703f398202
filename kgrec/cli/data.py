"""``kgrec data``: list, fetch, info, validate."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kgrec.errors import SchemaError, report_warnings


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["n_users=1000", "seed=3"]`` → ``{"n_users": 1000, "seed": 3}`` (``--param``; a
    malformed pair is a schema error naming that option)."""
    from kgrec.rundir.config import parse_set

    try:
        return parse_set(pairs)
    except SchemaError as err:
        raise SchemaError(err.message, field="--param") from None


def _load(args: argparse.Namespace):
    from kgrec.graphs import load_dataset

    return load_dataset(args.name, data_dir=args.data_dir, synthetic=parse_params(args.param) or None,
                        allow_outside_paths=args.allow_outside_paths)


def cmd_list(args: argparse.Namespace) -> int:
    from kgrec.graphs import list_schemas, load_schema

    for name, path in list_schemas().items():
        try:
            schema = load_schema(path)
            src = schema.source
            how = "synthetic" if src.synthetic is not None else "pip" if src.pip else "url" if src.url else "local"
            env = f"  (${src.env})" if src.env else ""
            print(f"{name:<18} {how:<9} {path}{env}")
        except SchemaError as err:
            print(f"{name:<18} INVALID   {err}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    ds = _load(args)
    report_warnings(ds.warnings, strict=False)
    loc = ds.location
    print(f"{ds.schema.name}: {len(loc.sha256)} file(s) verified in {loc.directory} ({loc.origin})")
    for name, digest in loc.sha256.items():
        print(f"  {name:<28} sha256 {digest}")
    return 0


def format_info(summary: dict[str, Any], dataset) -> str:
    lines = [f"{summary['name']}  ({summary['origin']}: {dataset.location.directory})", "nodes"]
    for name, count in summary["nodes"].items():
        lines.append(f"  {name:<24}{count:>12,}")
    lines.append("edges")
    groups_done: set[str] = set()
    for et, spec in dataset.origin.items():
        rev = "  +reverse" if spec.reverse else ""
        if spec.relation_col is None:
            lines.append(f"  {'(' + ', '.join(et) + ')':<44}{len(dataset.edges[et]):>10,}  {spec.role}{rev}")
        elif spec.name not in groups_done:
            groups_done.add(spec.name)
            group = summary["relation_groups"][spec.name]
            label = f"{spec.name}: {group['relations']} relation types ({spec.src} -> {spec.dst})"
            lines.append(f"  {label:<44}{group['edges']:>10,}  {spec.role}{rev}")
            for et2, spec2 in dataset.origin.items():
                if spec2.name == spec.name:
                    lines.append(f"      {et2[1]:<40}{len(dataset.edges[et2]):>10,}")
    lines.append(f"interactions {summary['interactions']:,}  (users with any: {summary['users_with_interactions']:,}, "
                 f"items with any: {summary['items_with_interactions']:,})")
    lines.append(f"sparsity {summary['sparsity']:.4%}")
    lines.append(f"knowledge graph {summary['kg_triples']:,} triples over {summary['kg_relation_types']} relation types")
    n_items = summary["nodes"][dataset.schema.item_type]
    lines.append(f"linked items {summary['linked_items']:,} / {n_items:,} ({summary['linked_item_coverage']:.1%}) "
                 "have KG or link edges")
    sens = "; ".join(f"{n}: {', '.join(a)}" for n, a in summary["sensitive"].items()) or "none"
    lines.append(f"sensitive attributes: {sens}")
    lines.append(f"warnings: {len(summary['warnings'])}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    ds = _load(args)
    report_warnings(ds.warnings, strict=args.strict)
    summary = ds.summary()
    print(json.dumps(summary, indent=2) if args.json else format_info(summary, ds))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from kgrec.graphs import load_schema, schema_path

    path = schema_path(args.name)
    schema = load_schema(path, allow_outside_paths=args.allow_outside_paths)
    n_rel = len(schema.edges)
    print(f"schema {path}: ok ({len(schema.nodes)} node types, {n_rel} edge entries, {len(schema.files)} files)")
    if args.schema_only:
        return 0
    ds = _load(argparse.Namespace(**{**vars(args), "name": str(path)}))
    report_warnings(ds.warnings, strict=args.strict)
    nodes, edges = ds.metadata()
    print(f"data {ds.location.directory}: ok ({len(nodes)} node types, {len(edges)} edge types incl. reverse, "
          f"{len(ds.interactions):,} interactions, {len(ds.warnings)} warning(s))")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"list": cmd_list, "fetch": cmd_fetch, "info": cmd_info, "validate": cmd_validate}[args.data_command](args)

"""``kgrec audit``: every check of a plan on a trained run, and the report.

Steps: load the run (data hash-checked) and the plan; rank the test users once; causal
questions, fairness and explanations; sections and gates; ``report.html`` (self-contained),
``report.md`` and ``report.json`` written atomically into the output directory; optionally
a headless-Chromium check of the HTML with a screenshot. The explanations run in a forked
worker process while the causal and fairness checks run in this one (two cores).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgrec.errors import SchemaError


@dataclass
class AuditOutcome:
    out_dir: Path
    passed: bool
    failed: list[str]
    seconds: float
    browser: Any = None  # kgrec.audit.report.browser.BrowserCheck


def plan_dirs() -> list[Path]:
    """``$KGREC_AUDIT_DIR``, then ``./audit``, then the repository's ``audit/``."""
    dirs = [Path(os.environ["KGREC_AUDIT_DIR"]).expanduser()] if os.environ.get("KGREC_AUDIT_DIR") else []
    out: list[Path] = []
    for d in dirs + [Path.cwd() / "audit", Path(__file__).resolve().parents[2] / "audit"]:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def default_plan(data_name: str) -> Path:
    stem = Path(data_name).stem
    for d in plan_dirs():
        if (d / f"{stem}.yaml").is_file():
            return d / f"{stem}.yaml"
    raise SchemaError(f"no audit plan for data set '{stem}' in {', '.join(map(str, plan_dirs()))}; pass --plan",
                      field="--plan")


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[audit] {msg}", file=sys.stderr, flush=True)


_CTX: Any = None  # the audit context a forked worker inherits


def _explain_job(progress: bool) -> tuple[Any, float]:
    from kgrec.audit.explain_check import run_explanations

    res = run_explanations(_CTX, progress=progress)
    return res, _CTX.timings.get("explanations", 0.0)


def _start_explanations(ctx: Any, progress: bool) -> tuple[Any, Any]:
    """Fork one worker for the explanations (it inherits the loaded run); where fork is not
    available, run them here. Returns (pool or None, future or finished result)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    global _CTX
    _CTX = ctx
    if "fork" not in mp.get_all_start_methods():
        return None, _explain_job(progress)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    return pool, pool.submit(_explain_job, progress)


def run_audit(run_dir: str | Path, *, plan_path: str | Path | None = None, out_dir: str | Path | None = None,
              overwrite: bool = False, progress: bool = True, browser: bool = True,
              exposure_log: str | Path | None = None, baseline: str | Path | None = None) -> AuditOutcome:
    from kgrec.atomic import AtomicDir, check_target
    from kgrec.audit.plan import check_against, load_plan
    from kgrec.rundir.load import check_files, load_config_of, load_run

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else Path("reports") / run_dir.name
    # every argument is checked before the (slow) run is loaded
    check_target(out, overwrite=overwrite)
    check_files(run_dir)
    if baseline is not None:
        check_files(Path(baseline))
    plan = load_plan(plan_path or default_plan(load_config_of(run_dir).data.name))
    if exposure_log is not None:
        from kgrec.serve.log import ExposureLog

        ExposureLog.open(exposure_log, create=False, readonly=True).close()  # a clear error before the slow part
    atomic = AtomicDir(out, overwrite=overwrite, what="report directory")
    with atomic as work:  # removed again on any error: no partial report is left behind
        _log(progress, f"loading {run_dir}")
        run = load_run(run_dir)
        check_against(plan, run.dataset)
        gates, report, ctx, extra = _audit(run, plan, t0, progress, None if exposure_log is None else str(exposure_log))
        rows = None
        if baseline is not None:
            rows = _add_comparison(report, ctx, gates, Path(baseline), plan, progress)
        from kgrec.audit.actions import actions_section, recommended_actions

        actions = recommended_actions(ctx, gates, comparison=rows, **extra)
        report.sections.insert(1, actions_section(actions))
        report.sections[0].paragraphs.append(
            f"Recommended actions: {len(actions)} (see that section)." if actions else "No action is required.")
        from kgrec.audit.report import write_all

        write_all(report, work)
        atomic.commit()
    check = None
    if browser:
        from kgrec.audit.report.browser import check_html

        check = check_html(out / "report.html", out / "screenshot.png")
        _log(progress, f"headless browser: {'ok' if check.ok else 'NOT ok'} ({check.detail})")
    failed = [g.name for g in gates if not g.passed]
    return AuditOutcome(out, not failed, failed, time.perf_counter() - t0, check)


def _add_comparison(report: Any, ctx: Any, gates: list[Any], baseline: Path, plan: Any, progress: bool) -> list[Any]:
    """Audit ``baseline`` with the same plan and put the side-by-side section after the summary."""
    from tqdm import tqdm

    from kgrec.audit.compare import compare, comparison_section
    from kgrec.audit.plan import check_against
    from kgrec.rundir.load import load_run

    _log(progress, f"baseline: loading {baseline}")
    base_run = load_run(baseline)
    check_against(plan, base_run.dataset)
    _log(progress, "baseline: the same checks ...")
    base_gates, _, base_ctx, _ = _audit(base_run, plan, time.perf_counter(), progress, alternatives=False)
    bar = tqdm(total=plan.n_boot, desc="comparison bootstrap", unit="resample", file=sys.stderr,
               disable=not progress)
    rows, is_paired = compare(ctx, base_ctx, gates, base_gates, n_boot=plan.n_boot, seed=plan.seeds[0],
                              progress=lambda i: bar.update(1))
    bar.close()
    section = comparison_section(ctx, base_ctx, rows, is_paired, plan.n_boot)
    report.sections[0].paragraphs.extend(section.paragraphs[1:3])
    report.sections.insert(1, section)
    return rows


def _bar(progress: bool, total: int, desc: str) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, disable=not progress)
    return bar, (lambda i: bar.update(i - bar.n))


def _alternatives(ctx: Any, progress: bool) -> tuple[Any, Any]:
    """The mitigation sweep and the non-profiling rankings (None, None when the plan asks for no sweep)."""
    from kgrec.audit.mitigation import run_mitigation
    from kgrec.audit.nonprofiling import run_nonprofiling

    mit = ctx.plan.mitigation
    bar, tick = _bar(progress, len(mit.strengths) + mit.n_boot, "mitigation sweep (re-ranking strengths)")
    sweep = run_mitigation(ctx, progress=tick)
    bar.close()
    bar, tick = _bar(progress, 3 + mit.n_boot, "non-profiling rankings")
    nonprof = run_nonprofiling(ctx, progress=tick)
    bar.close()
    return sweep, nonprof


def _audit(run: Any, plan: Any, t0: float, progress: bool, exposure_log: str | None = None, *,
           alternatives: bool = True) -> tuple[list[Any], Any, Any, dict[str, Any]]:
    """Every check of ``plan`` on ``run``: (gates, report, audit context, the results the
    recommended actions read: sweep, non-profiling, mediation). ``alternatives=False`` (a
    baseline's audit) skips the mitigation sweep and the non-profiling rankings."""
    from kgrec.audit.cards import datasheet, model_card, reproducibility, summary_section
    from kgrec.audit.causal_check import run_causal
    from kgrec.audit.context import build_audit_context
    from kgrec.audit.fairness_check import run_fairness
    from kgrec.audit.glossary import glossary_section, scope_section
    from kgrec.audit.mediation_check import mediation_section, run_mediation
    from kgrec.audit.report.model import Report
    from kgrec.audit.sections import causal_section, explanations_section, fairness_section

    ctx = build_audit_context(run, plan)
    ctx.exposure_log = exposure_log
    ctx.timings["load_and_rank"] = time.perf_counter() - t0
    _log(progress, f"plan {plan.path}: {len(ctx.users)} test users, K={plan.k}; explanations in a worker process")
    pool, pending = _start_explanations(ctx, progress)
    _log(progress, "causal questions (DoWhy) ...")
    causal = run_causal(ctx)
    _log(progress, "fairness (Fairlearn) ...")
    fairness = run_fairness(ctx)
    _log(progress, "mediation of the user-side gaps (DoWhy) ...")
    mediation = run_mediation(ctx)
    sweep = nonprof = None
    if alternatives:
        _log(progress, "mitigation sweep and non-profiling rankings ...")
        sweep, nonprof = _alternatives(ctx, progress)
    _log(progress, "waiting for the explanations ...")
    explained, ctx.timings["explanations"] = pending.result() if pool is not None else pending
    if pool is not None:
        pool.shutdown()
    sections = [causal_section(ctx, causal), fairness_section(ctx, fairness), *explanations_section(ctx, explained)]
    gates = [g for s in sections for g in s.all_gates()]
    extra_sections = []
    if sweep is not None:
        from kgrec.audit.mitigation import mitigation_section

        extra_sections.append(mitigation_section(ctx, sweep))
    if nonprof is not None:
        from kgrec.audit.nonprofiling import nonprofiling_section

        extra_sections.append(nonprofiling_section(ctx, nonprof))
    seconds = time.perf_counter() - t0
    body = [summary_section(ctx, gates), scope_section(ctx), model_card(ctx), datasheet(ctx), sections[3],
            sections[0], sections[1], mediation_section(ctx, mediation), *extra_sections, sections[2]]
    report = Report(title=f"Audit of {run.path.name}",
                    created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    run_dir=str(run.path), plan=str(plan.path),
                    sections=[*body, glossary_section([s for s in body if s.key != "scope"]),
                              reproducibility(ctx, seconds)],
                    meta={"seeds": plan.seeds, "kgrec_run": run.path.name})
    return gates, report, ctx, {"sweep": sweep, "nonprofiling": nonprof, "mediation": mediation}

"""Off-policy estimates of the uniform-random policy from the OBD Bernoulli-TS logs, against the
random logs' observed click rate (prints Markdown tables).

    .venv/bin/python benchmarks/obd_check.py                      # campaigns all, men, women; no clip and clip 100
    .venv/bin/python benchmarks/obd_check.py --campaign all --clip 50 --n-boot 2000 --json out.json

Data: the Open Bandit Dataset sample of ``obp==0.5.7`` (cache, ``$KGREC_OBD_DIR``, or a pip
download of the sdist). CIs: bootstrap percentile for the estimates, Wilson for the observed
rate (see :mod:`kgrec.audit.offpolicy` and :func:`kgrec.audit.obd.uniform_from_bts`). Widths are
printed in absolute terms, as a share of the value, and relative to the observed CI's width.
Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json

from kgrec.audit.obd import CAMPAIGNS, OBDCheck, uniform_from_bts


def _clip_label(clip: float | None) -> str:
    return "none" if clip is None else f"{clip:g}"


def table(check: OBDCheck, campaign: str, clip: float | None) -> str:
    lo, hi = check.observed_ci
    obs_w = hi - lo
    level = check.estimates[0].ci_level
    header = (f"| estimator | value | {level:.0%} CI | CI width | width / value | width / observed width "
              f"| inside observed CI | ESS | clipped |")
    lines = [f"### campaign `{campaign}`, clip {_clip_label(clip)}", "", header,
             "|---|---:|---|---:|---:|---:|---|---:|---:|"]
    for e in check.estimates:
        share = f"{e.ci_width / e.value:.0%}" if e.value > 0 else "n/a"
        inside = "yes" if lo <= e.value <= hi else "no"
        lines.append(f"| {e.name} | {e.value:.4f} | [{e.ci_low:.4f}, {e.ci_high:.4f}] | {e.ci_width:.4f} | {share} "
                     f"| {e.ci_width / obs_w:.2f} | {inside} | {e.ess:,.1f} | {e.clipped} |")
    lines.append(f"| observed (random log, Wilson) | {check.observed:.4f} | [{lo:.4f}, {hi:.4f}] | {obs_w:.4f} "
                 f"| {obs_w / check.observed:.0%} | 1.00 | | {check.n_observed:,} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", choices=CAMPAIGNS, action="append", help="repeatable; default: all three")
    ap.add_argument("--clip", type=float, action="append", help="repeatable; default: none and 100")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write every check's to_dict() here")
    args = ap.parse_args(argv)
    clips: list[float | None] = list(args.clip) if args.clip else [None, 100.0]
    dumps = []
    for campaign in args.campaign or CAMPAIGNS:
        for clip in clips:
            check = uniform_from_bts(campaign=campaign, clip=clip, seed=args.seed, n_boot=args.n_boot)
            print(table(check, campaign, clip), end="\n\n")
            dumps.append({"campaign": campaign, "clip": clip, **check.to_dict()})
    print("Notes:\n")
    for d in dumps:
        print(f"- clip {_clip_label(d['clip'])}: {d['notes']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dumps, fh, indent=2)


if __name__ == "__main__":
    main()

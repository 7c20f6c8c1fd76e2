"""``coc samples``: write deterministic sample approvals, build records and their planted defects."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from cli.main import CommandError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "samples",
        help="write sample approvals, MES build records and planted defects",
        description="Write approvals.json, builds.jsonl and defects.json: realistic, deterministic "
        "sample data for a South African plant exporting to the EU (same seed, same bytes).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/samples"),
        help="folder to write the three files to (default: out/samples)",
    )
    parser.add_argument("--vehicles", type=int, default=200, help="number of build records (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the vehicle choices (default 1)")
    parser.add_argument(
        "--defect-share",
        type=float,
        default=0.2,
        help="share of builds that carry one planted defect, 0 to 1 (default 0.2)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devkit.samples import SampleError, generate, write

    try:
        sample_set = generate(args.vehicles, args.seed, args.defect_share)
    except SampleError as exc:
        raise CommandError(str(exc)) from None
    paths = write(sample_set, args.out)
    kinds = Counter(defect.expected_code for defect in sample_set.defects.values())
    print(
        f"{len(sample_set.approvals)} approvals, {len(sample_set.builds)} builds, "
        f"{len(sample_set.defects)} with a planted defect"
    )
    for code, count in sorted(kinds.items()):
        print(f"  {code}: {count}")
    for path in paths:
        print(f"wrote {path}")
    return 0

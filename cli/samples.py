"""``coc samples``: write deterministic sample approvals, build records and their planted defects."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from cli.errors import EXIT_STATUS, BadInput


def register(coc: click.Group) -> None:
    coc.add_command(samples)


@click.command(epilog=EXIT_STATUS)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/samples"),
    help="folder to write the three files to",
)
@click.option("--vehicles", type=int, default=200, help="number of build records")
@click.option("--seed", type=int, default=1, help="seed of the vehicle choices")
@click.option(
    "--defect-share", type=float, default=0.2, help="share of builds that carry one planted defect, 0 to 1"
)
def samples(out: Path, vehicles: int, seed: int, defect_share: float) -> None:
    """Write sample approvals, MES build records and planted defects.

    approvals.json, builds.jsonl and defects.json: realistic, deterministic
    sample data for a South African plant exporting to the EU (same seed, same bytes).
    """
    from devkit.samples import SampleError, generate, write

    try:
        sample_set = generate(vehicles, seed, defect_share)
    except SampleError as exc:
        raise BadInput(str(exc)) from None
    paths = write(sample_set, out)
    kinds = Counter(defect.expected_code for defect in sample_set.defects.values())
    print(
        f"{len(sample_set.approvals)} approvals, {len(sample_set.builds)} builds, "
        f"{len(sample_set.defects)} with a planted defect"
    )
    for code, count in sorted(kinds.items()):
        print(f"  {code}: {count}")
    for path in paths:
        print(f"wrote {path}")

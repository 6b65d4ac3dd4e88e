# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The command line of scripts/bench: options, then the chosen parts in order (docs/benchmarks.md)."""

import argparse
import contextlib
import shutil
import sys
from datetime import UTC, datetime

from stackwright_tools import REPO
from stackwright_tools.bench.machine import DEFAULT_COMPUTE_MIB, DEFAULT_MAX_COMPUTES, machine_facts
from stackwright_tools.bench.parts import AIO_PARTS, MULTINODE_PARTS, PART_FUNCTIONS, PARTS
from stackwright_tools.bench.report import new_report
from stackwright_tools.bench.runner import Bench, Part

DEFAULT_INVENTORY = "inventory/lab-aio"
DEFAULT_MULTINODE_INVENTORY = "inventory/lab-multinode"


def parse_parts(value):
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if parts == ["all"]:
        return list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return [part for part in PARTS if part in parts]


def positive(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark the deployer on the lab (docs/benchmarks.md). Destroys and redeploys the lab(s).",
    )
    parser.add_argument(
        "--parts",
        type=parse_parts,
        default=list(PARTS),
        help=f"comma-separated parts, run in the order {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--inventory",
        default=DEFAULT_INVENTORY,
        help=f"AIO inventory for cold, warm, floor and noop, relative to the repository (default {DEFAULT_INVENTORY})",
    )
    parser.add_argument(
        "--multinode-inventory",
        default=DEFAULT_MULTINODE_INVENTORY,
        help=f"multinode inventory for add-compute and scale (default {DEFAULT_MULTINODE_INVENTORY})",
    )
    parser.add_argument("--output", help="JSON file (default artifacts/bench/<UTC timestamp>.json; latest.json too)")
    parser.add_argument(
        "--computes", type=positive, help="N of the scale part (default: as many as the free memory allows, at least 2)"
    )
    parser.add_argument(
        "--compute-mib",
        type=positive,
        default=DEFAULT_COMPUTE_MIB,
        help=f"memory allowed per compute host when N comes from memory (default {DEFAULT_COMPUTE_MIB})",
    )
    parser.add_argument(
        "--max-computes",
        type=positive,
        default=DEFAULT_MAX_COMPUTES,
        help=f"upper bound for N from memory (default {DEFAULT_MAX_COMPUTES})",
    )
    parser.add_argument(
        "--add-compute-args",
        default="",
        help='extra arguments for add-compute.yml, e.g. "-e foo=bar" (--limit <new host> is given)',
    )
    parser.add_argument("--floor-from", help="compute the floor from this task_times file instead of deploying")
    parser.add_argument(
        "--no-scale-floor",
        action="store_true",
        help="scale: skip the floor after each deploy (every host installs its venvs again, alone: about 25 minutes "
        "after a 6-host deploy on 2 cores); the runs then carry no floor",
    )
    parser.add_argument("--cold-cache", help="empty directory for the cold run's STACKWRIGHT_CACHE")
    parser.add_argument("--keep-cold-cache", action="store_true", help="keep the cold run's cache afterwards")
    parser.add_argument(
        "--work-dir",
        help="generated inventories and the cold cache (default: stackwright-bench/<run> beside the cache directory)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands of each part; run and write nothing")
    args = parser.parse_args(argv)
    if args.computes is not None and args.computes < 2:
        parser.error("--computes must be 2 or more (the scale part compares 1 with N)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    bench = Bench(args)
    options = dict(vars(args))
    bench.report = new_report(
        bench.run_id, ["scripts/bench", *(sys.argv[1:] if argv is None else argv)], options, machine_facts()
    )
    for name in PARTS:
        if name not in args.parts:
            bench.report["skipped"].append({"part": name, "reason": "not selected (--parts)"})
    bench.write_report()
    aio_ran = False
    for name in args.parts:
        if name in MULTINODE_PARTS and aio_ran:
            # The AIO lab and the multinode lab do not both fit beside N compute hosts.
            aio_ran = False
            housekeeping = Part("housekeeping")
            bench.destroy(housekeeping, bench.inventory, check=False)
            bench.report["housekeeping"].extend(housekeeping.setup)
        bench.run_part(name, PART_FUNCTIONS[name])
        aio_ran = aio_ran or name in AIO_PARTS
    bench.report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    bench.write_report()
    if bench.dry_run:
        if not args.work_dir:
            shutil.rmtree(bench.work_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                bench.work_dir.parent.rmdir()  # only when no other run left anything there
        print("bench: dry run, nothing measured")
        return 0
    print(bench.report["summary"])
    print(
        f"bench: results in {bench.output.relative_to(REPO) if bench.output.is_relative_to(REPO) else bench.output}",
        file=sys.stderr,
    )
    return 1 if any(part["status"] == "failed" for part in bench.report["parts"].values()) else 0

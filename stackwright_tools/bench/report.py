# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The JSON report of a run and its one-line summary."""

from datetime import UTC, datetime


def total_seconds(steps):
    seconds = [step["seconds"] for step in steps]
    return None if not seconds or None in seconds else round(sum(seconds), 1)


def _seconds(value):
    return f"{round(value)} s"


def summary_line(report):
    """`bench: cold 1234 s, warm 800 s, no-op 400 s (changed 0, restarted 0), floor 300 s, deploy/floor 2.7, ...`"""
    parts = report.get("parts", {})
    pieces = []

    def ok(name):
        part = parts.get(name)
        if part and part.get("status") == "failed":
            pieces.append(f"{name} failed")
            return None
        return part

    if part := ok("cold"):
        pieces.append(f"cold {_seconds(part['total_seconds'])}")
    if part := ok("warm"):
        pieces.append(f"warm {_seconds(part['total_seconds'])}")
    if part := ok("noop"):
        pieces.append(
            f"no-op {_seconds(part['seconds'])} (changed {part['changed_total']}, restarted {part['restarted_total']})"
        )
    if part := ok("floor"):
        pieces.append(f"floor {_seconds(part['seconds'])}")
        if part.get("deploy_over_floor") is not None:
            pieces.append(f"deploy/floor {part['deploy_over_floor']:.1f}")
    if part := ok("add-compute"):
        pieces.append(f"add-compute {_seconds(part['seconds'])}")
    if part := ok("scale"):
        for run in part["runs"]:
            noun = "compute" if run["computes"] == 1 else "computes"
            pieces.append(f"{run['computes']} {noun} {_seconds(run['total_seconds'])}")
    return "bench: " + (", ".join(pieces) if pieces else "nothing measured")


def new_report(run_id, argv, options, machine):
    return {
        "schema": 1,
        "run_id": run_id,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": None,
        "command": argv,
        "options": options,
        "machine": machine,
        "parts": {},
        "skipped": [],
        "housekeeping": [],
        "summary": None,
    }

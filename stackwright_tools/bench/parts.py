# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The parts of a run (cold, warm, floor, noop, add-compute, scale): what each deploys and the figures it keeps."""

import json
import shlex
import shutil
import sys
from pathlib import Path

from stackwright_tools import REPO
from stackwright_tools.bench.ansible_output import parse_recap, parse_unit_state, restarted_units
from stackwright_tools.bench.errors import BenchError, Skip
from stackwright_tools.bench.floor import floor_summary, load_task_times, venv_install_records, with_venv_installs
from stackwright_tools.bench.inventory import compute_hosts, copy_inventory, generate_inventory
from stackwright_tools.bench.machine import choose_computes, parse_meminfo
from stackwright_tools.bench.runner import LAB_PLAYBOOK, SECRETS_SCRIPT, SITE_PLAYBOOK, default_cache

PARTS = ("cold", "warm", "floor", "noop", "add-compute", "scale")
AIO_PARTS = ("cold", "warm", "floor", "noop")
MULTINODE_PARTS = ("add-compute", "scale")
ADD_COMPUTE_PLAYBOOK = "playbooks/add-compute.yml"
# The idempotence snapshot of the Molecule scenarios: systemctl show of every registry unit of every host.
SERVICE_STATE_PLAYBOOK = "molecule/resources/service-state.yml"
# The cold part keeps the lab base images under this name while its deploy builds them anew.
SAVED_IMAGE_REPOSITORY = "localhost/stackwright-base-bench-saved"


def part_cold(bench, part):
    """Fresh hosts, empty caches: a pristine inventory copy, a new STACKWRIGHT_CACHE, the base image hidden."""
    bench.inventory_info(bench.inventory)  # a usable inventory, before anything is destroyed
    inventory = bench.work_dir / "inventory-cold"
    copy_inventory(REPO / bench.inventory, inventory, keep_state=False)
    cache = Path(bench.args.cold_cache) if bench.args.cold_cache else bench.work_dir / "cold-cache"
    if cache.exists() and any(cache.iterdir()):
        raise BenchError(f"the cold cache {cache} is not empty")
    if not bench.dry_run:
        cache.mkdir(parents=True, exist_ok=True)
    env = {"STACKWRIGHT_CACHE": str(cache)}
    # The user's lab goes with the usual cache (its keys and state are there); the cold lab with the cold one.
    bench.destroy(part, bench.inventory)
    bench.aio_lab = "destroyed"
    hidden = []
    try:
        for image, name in bench.base_images():
            saved = f"{SAVED_IMAGE_REPOSITORY}:{name.rsplit(':', 1)[1]}"
            bench.step(part, "hide-base-image", ["podman", "tag", image, saved], kind="setup")
            hidden.append({"name": name, "saved_as": saved})
            bench.step(part, "hide-base-image", ["podman", "untag", image, name], kind="setup")
        result = bench.deploy(part, inventory, env=env)
    finally:
        bench.destroy(part, inventory, env=env, kind="cleanup", check=False)
        for entry in hidden:
            # The image the cold run built goes, the saved one gets its name back (same recipe, same tag).
            bench.step(part, "restore-base-image", ["podman", "rmi", entry["name"]], kind="cleanup", check=False)
            bench.step(
                part,
                "restore-base-image",
                ["podman", "tag", entry["saved_as"], entry["name"]],
                kind="cleanup",
                check=False,
            )
            bench.step(part, "restore-base-image", ["podman", "rmi", entry["saved_as"]], kind="cleanup", check=False)
        if not bench.args.keep_cold_cache and not bench.dry_run:
            shutil.rmtree(cache, ignore_errors=True)
    return {
        "total_seconds": result["total_seconds"],
        "inventory": str(inventory),
        "cache_dir": str(cache),
        "cache_kept": bool(bench.args.keep_cold_cache),
        "base_images_hidden": hidden,
        "note": "the cold lab is destroyed after the run (its keys live in the cold cache)",
    }


def warm_deploy(bench, part):
    info = bench.inventory_info(bench.inventory)
    cache = bench.cache_state(default_cache())
    bench.aio_lab = "failed"
    result = bench.deploy(part, bench.inventory)
    bench.aio_lab = "deployed"
    return {
        "total_seconds": result["total_seconds"],
        "lab_name": info["lab_name"],
        "cache_state": cache,
        "task_times": result["site"].get("task_times"),
    }


def part_warm(bench, part):
    """Fresh hosts, caches kept."""
    return warm_deploy(bench, part)


def part_floor(bench, part):
    """Install floor of a warm deploy: per category the slowest host's sum, and the deploy time over it."""
    deploy_seconds = None
    if bench.args.floor_from:
        source, task_times = "file", bench.args.floor_from
    elif "warm" in bench.args.parts:
        if bench.dry_run:
            return {}
        if "warm" not in bench.results:
            raise Skip("the warm deploy of this run failed: no complete task times")
        source, task_times = "warm", bench.results["warm"]["task_times"]
        deploy_seconds = bench.results["warm"]["total_seconds"]
    else:
        deploy = warm_deploy(bench, part)
        source, task_times = "warm deploy of this part", deploy["task_times"]
        deploy_seconds = deploy["total_seconds"]
    if bench.dry_run:
        return {}
    if not task_times:
        raise BenchError("the deploy recorded no task times (is plugins/callback/task_times.py loaded?)")
    # The deployed lab installs its venvs again, alone; a floor from a file has no lab to ask.
    installs = [] if source == "file" else venv_install_records(bench.venv_floor_markers(bench.inventory))
    floor = floor_summary(with_venv_installs(load_task_times(REPO / task_times), installs))
    if not floor["seconds"]:
        raise BenchError(
            f"no task of {task_times} is in a floor category: "
            "the patterns of stackwright_tools/bench/floor.py no longer match the roles"
        )
    ratio = round(deploy_seconds / floor["seconds"], 2) if deploy_seconds and floor["seconds"] else None
    return {
        "seconds": floor["seconds"],
        "source": source,
        "task_times": str(task_times),
        "deploy_seconds": deploy_seconds,
        "deploy_over_floor": ratio,
        "venv_installs_measured_alone": len(installs),
        **{key: value for key, value in floor.items() if key != "seconds"},
    }


def service_snapshot(bench, part, name, inventory, info):
    bench.playbook(part, name, inventory, SERVICE_STATE_PLAYBOOK)
    if bench.dry_run:
        return {}
    state = info["lab_state_dir"] / "service-state.json"
    shutil.copy(state, bench.log_dir / f"{part.name}-{name}.json")
    return json.loads(state.read_text())


def part_noop(bench, part):
    """site.yml on the deployed lab: nothing may change and no service may restart."""
    if bench.aio_lab == "failed":
        raise Skip("the deploy of this run failed, so there is no deployed lab to re-run on")
    if bench.aio_lab == "destroyed":
        raise Skip("the cold part removes its lab (its keys live in the cold cache): add the warm part")
    info = bench.inventory_info(bench.inventory)
    if bench.aio_lab is None and not bench.dry_run and not bench.deployed(bench.inventory, info):
        raise Skip(
            f"the lab {info['lab_name']} of {bench.inventory} is not deployed: run `make aio` or --parts warm,noop"
        )
    before = service_snapshot(bench, part, "units-before", bench.inventory, info)
    site = bench.playbook(part, "site", bench.inventory, SITE_PLAYBOOK)
    after = service_snapshot(bench, part, "units-after", bench.inventory, info)
    if bench.dry_run:
        return {}
    recap = parse_recap((REPO / site["log"]).read_text())
    changed = {host: counters.get("changed", 0) for host, counters in recap.items()}
    restarted = restarted_units(before, after)
    changed_total = sum(changed.values())
    restarted_total = sum(len(units) for units in restarted.values())
    return {
        "seconds": site["seconds"],
        "changed": changed,
        "changed_total": changed_total,
        "restarted": restarted,
        "restarted_total": restarted_total,
        "units_checked": sum(len(parse_unit_state(state)) for state in before.values()),
        "idempotent": changed_total == 0 and restarted_total == 0,
        "task_times": site.get("task_times"),
    }


def part_add_compute(bench, part):
    """One more compute host in the running multinode cloud, by playbooks/add-compute.yml --limit <it>."""
    if not (REPO / ADD_COMPUTE_PLAYBOOK).is_file():
        raise Skip(f"{ADD_COMPUTE_PLAYBOOK} does not exist (yet)")
    base = bench.multinode_inventory
    info = bench.inventory_info(base)
    figures = {"base_inventory": str(base)}
    if bench.dry_run or not bench.deployed(base, info):
        # No running cloud of this inventory: deploy it first (`make aio INVENTORY=...`), not counted.
        figures["base_deploy_seconds"] = bench.deploy(part, base, kind="setup")["total_seconds"]
    current = len(compute_hosts(REPO / base))
    generated = generate_inventory(REPO / base, bench.work_dir / "inventory-add-compute", current + 1, keep_state=True)
    (new_host,) = generated["added"]
    figures |= {"inventory": generated["path"], "host": new_host, "computes_after": len(generated["computes"])}
    # The new container (lab.yml leaves the existing ones alone) and any secret it needs: preparation, not counted.
    bench.playbook(part, "lab", generated["path"], LAB_PLAYBOOK, kind="setup")
    bench.step(part, "secrets", [sys.executable, SECRETS_SCRIPT, generated["path"]], kind="setup")
    extra = shlex.split(bench.args.add_compute_args or "")
    step = bench.playbook(part, "add-compute", generated["path"], ADD_COMPUTE_PLAYBOOK, "--limit", new_host, *extra)
    if bench.dry_run:
        return figures
    recap = parse_recap((REPO / step["log"]).read_text())
    return figures | {
        "seconds": step["seconds"],
        "changed": {host: counters.get("changed", 0) for host, counters in recap.items()},
        "task_times": step.get("task_times"),
        "note": f"the lab {info['lab_name']} now also runs {new_host}; `make destroy INVENTORY={base}` removes all",
    }


def part_scale(bench, part):
    """Deploy times with 1 and with N compute hosts (N from --computes, or from the memory free once it is empty)."""
    base = bench.multinode_inventory
    info = bench.inventory_info(base)
    bench.destroy(part, base)
    if bench.args.computes:
        choice = {"computes": bench.args.computes, "source": "--computes"}
    else:
        available = parse_meminfo(Path("/proc/meminfo").read_text())["MemAvailable"]
        choice = choose_computes(available, bench.args.compute_mib, bench.args.max_computes)
    if choice["computes"] < 2:
        raise Skip(f"only {choice['computes']} compute host(s) fit in memory ({choice}): nothing to compare with 1")
    runs = []
    for computes in (1, choice["computes"]):
        generated = generate_inventory(REPO / base, bench.work_dir / f"inventory-scale-{computes}", computes)
        cache = bench.cache_state(default_cache())
        result = bench.deploy(part, Path(generated["path"]))
        run = {
            "computes": computes,
            "hosts": len(info["hosts"]) - len(compute_hosts(REPO / base)) + computes,
            "total_seconds": result["total_seconds"],
            "inventory": generated["path"],
            "cache_state": cache,
            "task_times": result["site"].get("task_times"),
        }
        if bench.args.no_scale_floor:
            run["floor_skipped"] = "--no-scale-floor"
        elif not bench.dry_run and run["task_times"]:
            installs = venv_install_records(bench.venv_floor_markers(Path(generated["path"])))
            floor = floor_summary(with_venv_installs(load_task_times(REPO / run["task_times"]), installs))
            run["floor_seconds"] = floor["seconds"]
            run["floor_categories"] = {name: entry["seconds"] for name, entry in floor["categories"].items()}
        runs.append(run)
    if bench.dry_run:
        return {}
    first, last = runs[0], runs[-1]
    return {
        "computes_choice": choice,
        "runs": runs,
        "seconds_per_added_compute": round(
            (last["total_seconds"] - first["total_seconds"]) / (last["computes"] - 1), 1
        ),
        "note": f"the lab {info['lab_name']} keeps running with {last['computes']} compute hosts "
        f"({last['inventory']}); `make destroy INVENTORY={base}` removes it",
    }


PART_FUNCTIONS = {
    "cold": part_cold,
    "warm": part_warm,
    "floor": part_floor,
    "noop": part_noop,
    "add-compute": part_add_compute,
    "scale": part_scale,
}

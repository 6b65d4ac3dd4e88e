# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The deploy host a run measures on: its facts for the report, and how many compute hosts fit in its memory."""

import configparser
import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

from stackwright_tools import REPO

# Choosing N for `scale` from free memory. roles/lab sets no memory limit per host, so these are the platform's
# measured sizes (platform notes: 3 controllers, 1 network host and 2 computes fit in about 10 GiB before guests), a
# per-compute allowance (--compute-mib) and room for the deploy host itself. They choose N; they are never reported as
# figures.
MULTINODE_LAB_MIB = 10 * 1024
MULTINODE_LAB_COMPUTES = 2
DEFAULT_COMPUTE_MIB = 1024
DEPLOY_HOST_RESERVE_MIB = 2048
# A 2-core deploy host: more compute hosts make a run of hours; raise it with --max-computes.
DEFAULT_MAX_COMPUTES = 8


def parse_meminfo(text):
    """/proc/meminfo -> {field: MiB}."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if match:
            values[match.group(1)] = int(match.group(2)) // 1024
    return values


def choose_computes(mem_available_mib, compute_mib=DEFAULT_COMPUTE_MIB, max_computes=DEFAULT_MAX_COMPUTES):
    """How many compute hosts fit beside the other multinode hosts in the memory available now."""
    other_hosts_mib = MULTINODE_LAB_MIB - MULTINODE_LAB_COMPUTES * compute_mib
    fits = (mem_available_mib - DEPLOY_HOST_RESERVE_MIB - other_hosts_mib) // compute_mib
    return {
        "computes": max(0, min(fits, max_computes)),
        "source": "memory",
        "mem_available_mib": mem_available_mib,
        "other_hosts_mib": other_hosts_mib,
        "compute_mib": compute_mib,
        "reserve_mib": DEPLOY_HOST_RESERVE_MIB,
        "fits": max(0, fits),
        "max_computes": max_computes,
    }


def parse_os_release(text):
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value.strip().strip('"')
    return values


def run_text(argv, env=None):
    """Output of a read-only command, or None when it cannot run."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, env=env)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ansible_strategy():
    """The strategy the deploys run with: ANSIBLE_STRATEGY wins over ansible.cfg, as it does in Ansible."""
    if os.environ.get("ANSIBLE_STRATEGY"):
        return os.environ["ANSIBLE_STRATEGY"]
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "ansible.cfg")
    return config.get("defaults", "strategy", fallback="linear")


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts():
    meminfo = parse_meminfo(Path("/proc/meminfo").read_text())
    os_release = Path("/etc/os-release")
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        None,
    )
    status = run_text(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_total_mib": meminfo.get("MemTotal"),
        "memory_available_mib": meminfo.get("MemAvailable"),
        "loadavg": list(os.getloadavg()),
        "kernel": f"{platform.release()} {platform.version()}",
        "lsb_release": run_text(["lsb_release", "-ds"]),
        "os_release": parse_os_release(os_release.read_text()) if os_release.is_file() else None,
        "git_commit": run_text(["git", "rev-parse", "HEAD"]),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "ansible_core": package_version("ansible-core"),
        "ansible_strategy": ansible_strategy(),
        "mitogen": package_version("mitogen"),
        "podman": run_text(["podman", "--version"]),
    }

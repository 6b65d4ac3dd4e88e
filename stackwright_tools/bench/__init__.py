# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Benchmark the deployer on the lab: wall times of real deploys, written as JSON plus one summary line.

Usage: .venv/bin/python scripts/bench [--parts cold,warm,floor,noop,add-compute,scale] [--inventory DIR] ...
       (or `make bench BENCH_ARGS="--parts ..."`; see docs/benchmarks.md)

Parts (run in this order; each one can be chosen with --parts):
  cold         destroy the lab, then lab.yml, generate-secrets and site.yml on a pristine copy of the inventory with
               STACKWRIGHT_CACHE pointing at a new empty directory and the podman base image hidden
  warm         destroy the lab, keep the caches, deploy again (lab.yml, generate-secrets, site.yml)
  floor        the install floor from the task times of the warm deploy (package installs, venv installs from the
               wheelhouse, db_sync, first starts), as the critical path over the hosts; deploy / floor
  noop         site.yml again on the deployed lab: changed count per host and service units restarted (must be 0)
  add-compute  one more compute host in a running multinode cloud: playbooks/add-compute.yml --limit <new host>
  scale        deploy times of multinode inventories with 1 and with N compute hosts

Every step is a command a user would run (the Makefile's ansible-playbook and generate-secrets lines); its output goes
to artifacts/bench/logs/<run>/, its task times (plugins/callback/task_times.py) beside it. Parts that are not run
appear under `skipped` with the reason; a failed part is recorded as failed with the tail of its log. No figure is
ever estimated: what was not measured is absent.
"""

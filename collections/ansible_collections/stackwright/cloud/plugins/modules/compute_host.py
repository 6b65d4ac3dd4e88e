# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compute_host
short_description: Drain a compute host by migration, evacuate a dead one, or put it back into service
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Acts on a whole compute host: its nova-compute service and every instance on it, of every project.
    M(openstack.cloud.compute_service) enables and disables one service and M(openstack.cloud.server_action) moves
    one server; this module does both for a host and waits until it is empty.
  - >-
    O(state=drained) disables the nova-compute service of O(host) (the scheduler places nothing new there), then
    moves every instance off it: running ones (V(ACTIVE), V(PAUSED)) by live migration (block migration when the
    disks are not on shared storage, as nova decides with C(block_migration=auto)), stopped ones (V(SHUTOFF)) by
    cold migration, whose resize it confirms. It waits until each one is settled on another host, for at most
    O(timeout) seconds in all. When some instance could not be moved it fails at the end, listing each one and why
    (RV(not_moved)), and leaves the host disabled.
  - >-
    O(state=evacuated) is for a host that is dead: its nova-compute service must be down (stopped, or forced down
    with M(stackwright.cloud.compute_service) once the host is fenced), or the module refuses before it changes
    anything. It disables the service, then evacuates every instance (nova rebuilds it on another host: the same
    disks when they are on shared storage or volumes, otherwise a fresh root disk from its image) and waits.
  - >-
    O(state=enabled) enables the service again, which clears its disabled reason. It moves no instance back.
  - >-
    Instances that nova cannot move in their state (for example V(ERROR), V(SUSPENDED), V(SHELVED), V(RESCUE), or
    V(VERIFY_RESIZE): a resize or migration to this host awaiting confirmation) are not touched and are reported in
    RV(not_moved). A move that is already running when the task starts (V(MIGRATING), V(RESIZE), V(REBUILD)) is
    waited for, so that a run that timed out can simply be run again.
  - >-
    Reports C(changed) only when it changed the service or started a move: a host that is disabled and empty is
    unchanged.
options:
  host:
    description:
      - Nova's name of the host, as C(openstack compute service list) shows it (C([DEFAULT] host) of nova.conf,
        usually the short host name).
    type: str
    required: true
  state:
    description:
      - V(drained) disables the service and moves every instance off the host by migration.
      - V(evacuated) evacuates every instance of a host whose nova-compute service is down, and disables it.
      - V(enabled) enables the service (and clears its disabled reason).
    type: str
    choices: [drained, evacuated, enabled]
    required: true
  disabled_reason:
    description:
      - With O(state=drained) or O(state=evacuated), the reason recorded when the module disables the service.
      - >-
        Unset, a service the module disables gets V(drained by stackwright.cloud.compute_host) (or V(evacuated by
        ...)), and the reason of a service that is already disabled is left as it is. Set, it replaces a different
        reason of an already disabled service.
    type: str
  target_host:
    description:
      - >-
        With O(state=drained) or O(state=evacuated), move every instance to this host (nova's name) instead of
        letting the scheduler choose. The scheduler still checks that the instance fits there. It must have an
        enabled nova-compute service that is up.
      - A cold migration to a given host needs compute API microversion 2.56 or newer.
    type: str
  migration:
    description:
      - With O(state=drained), how instances move.
      - >-
        V(auto) live-migrates running instances (V(ACTIVE), V(PAUSED)) and cold-migrates stopped ones (V(SHUTOFF)).
        A running instance whose live migration fails is not cold-migrated: it is reported.
      - V(live) live-migrates running instances only; stopped ones are reported as not moved.
      - >-
        V(cold) cold-migrates V(ACTIVE) and V(SHUTOFF) instances. nova stops a running instance for the copy and starts
        it again on the other host (downtime); it cannot cold-migrate a V(PAUSED) one.
    type: str
    choices: [auto, live, cold]
    default: auto
  timeout:
    description:
      - >-
        With O(state=drained) or O(state=evacuated), how long to wait, in seconds, for all the moves together. An
        instance still moving then is reported in RV(not_moved); nova goes on with it, and a second run waits for it.
    type: int
    default: 1800
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: >-
      Reads the service and the instances and reports what would be disabled and moved (RV(moved) as planned,
      RV(not_moved) for the instances it could not move), without a write call. It fails where a run would fail for
      certain (an instance nova cannot move in its state, no other host to move to).
notes:
  - Needs admin credentials of the cloud (nova's default policy allows these calls to admins only).
  - >-
    Changes the service through its id (compute API microversion 2.53 or newer, nova 16.0.0 Pike). Server actions
    use what openstacksdk and the cloud agree on; with 2.95 and newer nova leaves an evacuated instance stopped on its
    new host.
  - O(wait) is not used; the module always waits, for at most O(timeout) seconds.
  - >-
    O(state=enabled) does not lift a force-down (M(stackwright.cloud.compute_service) with C(forced_down=false) does).
  - >-
    Live migration needs the hypervisors to reach each other (Stackwright's libvirt role opens libvirtd's TLS
    listener on the management network); cold migration without shared storage copies the disks between the compute
    hosts over SSH as nova's user.
seealso:
  - module: openstack.cloud.compute_service
    description: Enable and disable one compute service.
  - module: openstack.cloud.server_action
    description: Migrate, live-migrate or evacuate one server.
  - module: stackwright.cloud.compute_service
    description: Force a fenced host's service down before evacuating it.
  - name: Nova admin guide, live-migrate instances
    description: What live migration needs of the hypervisors, and how to follow it.
    link: https://docs.openstack.org/nova/latest/admin/live-migration-usage.html
  - name: Nova admin guide, evacuate instances
    description: When evacuating is safe, and what it keeps of the instances.
    link: https://docs.openstack.org/nova/latest/admin/evacuate.html
"""

EXAMPLES = r"""
- name: Empty cmp1 for maintenance
  stackwright.cloud.compute_host:
    cloud: admin
    host: cmp1
    state: drained
    disabled_reason: "maintenance: firmware update"
  register: drained

- name: Show where the instances went
  ansible.builtin.debug:
    msg: "{{ drained.moved | map(attribute='name') | zip(drained.moved | map(attribute='to_host')) }}"

- name: Move only what can move without downtime, to cmp2
  stackwright.cloud.compute_host:
    cloud: admin
    host: cmp1
    state: drained
    migration: live
    target_host: cmp2

- name: Force the fenced cmp3 down, then rebuild its instances elsewhere
  stackwright.cloud.compute_service:
    cloud: admin
    host: cmp3
    forced_down: true

- name: Evacuate cmp3
  stackwright.cloud.compute_host:
    cloud: admin
    host: cmp3
    state: evacuated

- name: Put cmp1 back into service
  stackwright.cloud.compute_host:
    cloud: admin
    host: cmp1
    state: enabled
"""

RETURN = r"""
# The contents of `service`: doc_fragments/nova_service.py.
extends_documentation_fragment:
  - stackwright.cloud.nova_service
moved:
  description:
    - The instances that left O(host) during the task, each on its new host. In check mode, the moves planned
      (RV(moved[].to_host) is O(target_host), or null when the scheduler would choose).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Id of the instance.
      type: str
      sample: 1f0e0c4a-6c2e-4d3b-9a8f-2b7c1d0e9a01
    name:
      description: Name of the instance.
      type: str
      sample: web-1
    method:
      description:
        - V(live), V(cold) or V(evacuate); V(waited) for a move that was already running when the task started.
      type: str
      sample: live
    from_host:
      description: O(host).
      type: str
      sample: cmp1
    to_host:
      description: The host it is on now.
      type: str
      sample: cmp2
    status:
      description: Its status on the new host (in check mode, its status now).
      type: str
      sample: ACTIVE
    previous_status:
      description:
        - Its status when the task started. With compute API 2.95 and newer nova leaves an evacuated instance
          V(SHUTOFF) on its new host; this says whether it was running before.
      type: str
      sample: ACTIVE
not_moved:
  description:
    - The instances still on O(host), or whose move did not finish, each with the reason. The task fails when this
      is not empty (C(failed) is Ansible's own key, hence the name).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Id of the instance.
      type: str
    name:
      description: Name of the instance.
      type: str
    status:
      description: Its status when the task gave up on it.
      type: str
      sample: ERROR
    host:
      description: The host it is on.
      type: str
      sample: cmp1
    reason:
      description: Why it was not moved.
      type: str
      sample: "status ERROR: nova migrates only ACTIVE, PAUSED and SHUTOFF instances"
service:
  description: The nova-compute service of O(host) after the task. In check mode, as it would be.
  returned: always
msg:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: "cmp1: disabled, moved 2 instance(s) (1 live, 1 cold)"
"""

import time
from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule
from ansible_collections.stackwright.cloud.plugins.module_utils.nova_services import (
    COMPUTE_BINARY,
    ServiceLookupError,
    find_service,
    known_hosts,
    service_id_microversion_problem,
    service_record,
)

# A cold migration to a given host (nova 17.0.0, Queens).
MIGRATE_HOST_MICROVERSION = "2.56"
# Seconds between two looks at the moving instances.
POLL_INTERVAL = 5
LISTED = 5

# What nova accepts (nova/compute/api.py, check_instance_state of live_migrate, resize and evacuate).
LIVE_STATUSES = ("ACTIVE", "PAUSED")
COLD_STATUSES = ("ACTIVE", "SHUTOFF")
EVACUATE_STATUSES = ("ACTIVE", "SHUTOFF", "ERROR")
# A move that already runs.
MOVING_STATUSES = {"drained": ("MIGRATING", "RESIZE"), "evacuated": ("REBUILD",)}
# Where a move ends.
SETTLED_STATUSES = ("ACTIVE", "PAUSED", "SHUTOFF")


def is_down(service):
    return service.state == "down" or bool(service.is_forced_down)


def listing(entries):
    shown = ", ".join(f"{entry['name']} ({entry['id']}): {entry['reason']}" for entry in entries[:LISTED])
    more = len(entries) - LISTED
    return shown + (f"; and {more} more (see not_moved)" if more > 0 else "")


class Move:
    """One instance to move off the host, and how far it got."""

    def __init__(self, server, method):
        self.id = server.id
        self.name = server.name
        self.status = self.previous_status = server.status
        self.host = server.compute_host
        self.task_state = server.task_state
        self.method = method
        self.confirmed = False

    def seen(self, server):
        self.status, self.host, self.task_state = server.status, server.compute_host, server.task_state

    def moved(self, from_host):
        return {
            "id": self.id, "name": self.name, "method": self.method, "from_host": from_host, "to_host": self.host,
            "status": self.status, "previous_status": self.previous_status,
        }  # fmt: skip

    def not_moved(self, reason):
        return {"id": self.id, "name": self.name, "status": self.status, "host": self.host, "reason": reason}


class ComputeHostModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        host=dict(type="str", required=True),
        state=dict(type="str", required=True, choices=["drained", "evacuated", "enabled"]),
        disabled_reason=dict(type="str"),
        target_host=dict(type="str"),
        migration=dict(type="str", default="auto", choices=["auto", "live", "cold"]),
        timeout=dict(type="int", default=1800),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        host, state = self.params["host"], self.params["state"]
        if state == "enabled":
            unused = [name for name in ("disabled_reason", "target_host") if self.params[name] is not None]
            if unused:
                self.fail_json(msg=f"{' and '.join(unused)} apply to state=drained and state=evacuated only")
        if self.params["target_host"] == host:
            self.fail_json(msg=f"target_host is {host} itself: name another compute host, or leave it unset")
        if self.params["timeout"] <= 0:
            self.fail_json(msg="timeout must be a positive number of seconds")
        services = list(self.conn.compute.services(binary=COMPUTE_BINARY))
        service = self.find(host, services)
        if state == "enabled":
            self.enable(host, service)
        self.empty(host, state, service, services)

    # The service.

    def find(self, host, services):
        try:
            service = find_service(
                services,
                host,
                COMPUTE_BINARY,
                "delete the stale one first (stackwright.cloud.compute_service, state: absent)",
            )
        except ServiceLookupError as error:
            self.fail_json(msg=str(error))
        if service is None:
            self.fail_json(
                msg=f"nova has no nova-compute service on host {host!r} (compute hosts: {known_hosts(services)}). Give "
                "nova's name of the host, as 'openstack compute service list --service nova-compute' shows it."
            )
        return service

    def check_microversion(self):
        problem = service_id_microversion_problem(self.sdk, self.conn.compute)
        if problem:
            self.fail_json(msg=problem)

    def enable(self, host, service):
        current = service_record(service)
        result = dict(moved=[], not_moved=[])
        if current["status"] == "enabled" and not current["disabled_reason"]:
            self.exit_json(changed=False, service=current, msg=f"{host}: already enabled", **result)
        self.check_microversion()
        note = " (still forced down: lift it with stackwright.cloud.compute_service)" if current["forced_down"] else ""
        if self.check_mode:
            current.update(status="enabled", disabled_reason=None)
            self.exit_json(changed=True, service=current, msg=f"{host}: would enable{note}", **result)
        # Nova clears the reason when it enables a service (2.53 and newer).
        updated = self.conn.compute.update_service(service.id, status="enabled")
        self.exit_json(changed=True, service=service_record(updated), msg=f"{host}: enabled{note}", **result)

    def disabling(self, state, service):
        """The update that disables the service with its reason, or None when it is as asked."""
        reason = self.params["disabled_reason"]
        if service.status != "disabled":
            return {"status": "disabled", "disabled_reason": reason or f"{state} by stackwright.cloud.compute_host"}
        if reason is not None and reason != (service.disabled_reason or ""):
            # Nova replaces the reason only together with the status; without a reason it clears it.
            return {"status": "disabled", **({"disabled_reason": reason} if reason else {})}
        return None

    # The instances.

    def servers_on(self, host):
        # Nova filters on its host column exactly; every project's instances count.
        return [
            server
            for server in self.conn.compute.servers(details=True, all_projects=True, compute_host=host)
            if server.compute_host == host
        ]

    def plan(self, state, server):
        """How the server leaves the host: (method, None), or (None, reason) when it cannot."""
        status, mode = server.status, self.params["migration"]
        if status in MOVING_STATUSES[state]:
            return "waited", None
        if server.task_state:
            return None, f"busy (task {server.task_state}): run again once it is done"
        if state == "evacuated":
            if status in EVACUATE_STATUSES:
                return "evacuate", None
            return None, f"status {status}: nova evacuates only ACTIVE, SHUTOFF and ERROR instances"
        if status == "VERIFY_RESIZE":
            return None, (
                "a resize or migration to this host awaits confirmation: confirm or revert it "
                f"(openstack server resize confirm|revert {server.id}), then run again"
            )
        if mode != "cold" and status in LIVE_STATUSES:
            return "live", None
        if mode != "live" and status in COLD_STATUSES:
            return "cold", None
        if mode == "live" and status == "SHUTOFF":
            return None, "stopped: live migration needs a running instance (migration: auto or cold moves it)"
        if mode == "cold" and status == "PAUSED":
            return None, "paused: nova cold-migrates only ACTIVE and SHUTOFF instances (migration: auto or live)"
        return None, f"status {status}: nova migrates only ACTIVE, PAUSED (live) and SHUTOFF (cold) instances"

    def destinations(self, host, services):
        """The compute hosts that can take instances, or a failure that says why none can."""
        target = self.params["target_host"]
        usable = sorted(s.host for s in services if s.host != host and s.status == "enabled" and not is_down(s))
        if target is not None:
            match = [s for s in services if s.host == target]
            if not match:
                return None, f"target_host {target!r} has no nova-compute service"
            if target not in usable:
                return None, f"target_host {target} cannot take instances: its nova-compute service is " + (
                    "down" if is_down(match[0]) else "disabled"
                )
            return [target], None
        if not usable:
            return None, "no other compute host has an enabled nova-compute service that is up"
        return usable, None

    def empty(self, host, state, service, services):
        moves, not_moved = [], []
        listed = self.servers_on(host)
        for server in listed:
            method, reason = self.plan(state, server)
            if method:
                moves.append(Move(server, method))
            else:
                not_moved.append(Move(server, None).not_moved(reason))
        update = self.disabling(state, service)
        current = service_record(service)
        if not update:
            done, would = None, None
        elif service.status != "disabled":
            done, would = "disabled", "would disable"
        else:
            reason = update.get("disabled_reason")
            done = f"reason set to {reason!r}" if reason else "reason cleared"
            would = f"would set the reason to {reason!r}" if reason else "would clear the reason"

        # Refusals, before anything changes.
        if state == "evacuated" and not is_down(service):
            self.fail_json(
                msg=f"not evacuating {host}: its nova-compute service still reports up. Evacuating the instances of a "
                "host that still runs them starts them a second time elsewhere on the same disks. Fence the host "
                "(power it off, or cut it from the network and storage), then force its service down "
                "(stackwright.cloud.compute_service, forced_down: true) or wait until nova reports it down. Nothing "
                "was changed. To empty a host that works, use state: drained.",
                service=current, moved=[], not_moved=not_moved,
            )  # fmt: skip
        starting = [move for move in moves if move.method != "waited"]
        if starting:
            if state == "drained" and is_down(service):
                self.fail_json(
                    msg=f"not draining {host}: its nova-compute service is down, and nova migrates only from a host "
                    "whose service is up. Start nova-compute there; if the host is dead, fence it and use state: "
                    "evacuated. Nothing was changed.",
                    service=current, moved=[], not_moved=not_moved,
                )  # fmt: skip
            _usable, why = self.destinations(host, services)
            if why:
                self.fail_json(
                    msg=f"cannot move the {len(starting)} instance(s) of {host}: {why}. Nothing was changed.",
                    service=current, moved=[], not_moved=not_moved,
                )  # fmt: skip
            if (
                state == "drained"
                and self.params["target_host"]
                and any(move.method == "cold" for move in starting)
                and not self.sdk.utils.supports_microversion(self.conn.compute, MIGRATE_HOST_MICROVERSION)
            ):
                self.fail_json(
                    msg=f"a cold migration to target_host needs compute API microversion {MIGRATE_HOST_MICROVERSION} "
                    "or newer; leave target_host unset to let the scheduler choose. Nothing was changed.",
                    service=current, moved=[], not_moved=not_moved,
                )  # fmt: skip
        if update:
            self.check_microversion()

        if self.check_mode:
            if update:
                current.update(status="disabled", disabled_reason=update.get("disabled_reason"))
            planned = [{**move.moved(host), "to_host": self.params["target_host"]} for move in moves]
            changed = bool(update) or bool(starting)
            self.finish(host, current, changed, would, planned, not_moved, would=True)

        if update:
            current = service_record(self.conn.compute.update_service(service.id, **update))
        followed, issued = [], 0
        for move in moves:
            reason = self.start(move) if move.method != "waited" else None
            if reason:
                not_moved.append(move.not_moved(reason))
                continue
            issued += move.method != "waited"
            followed.append(move)
        moved, stuck = self.wait(host, followed)
        not_moved.extend(stuck)

        # Whatever came onto the host meanwhile (a build already scheduled there) is still on it.
        handled = {server.id for server in listed}
        for server in self.servers_on(host):
            if server.id not in handled:
                not_moved.append(Move(server, None).not_moved("came onto the host during the task: run again"))
        self.finish(host, current, bool(update) or issued > 0, done, moved, not_moved)

    def start(self, move):
        """Asks nova to move the server; the reason when nova refuses."""
        target, compute = self.params["target_host"], self.conn.compute
        try:
            if move.method == "live":
                compute.live_migrate_server(move.id, host=target, force=False, block_migration="auto")
            elif move.method == "cold":
                compute.migrate_server(move.id, host=target)
            else:
                compute.evacuate_server(move.id, host=target)
        except (self.sdk.exceptions.SDKException, ValueError) as error:
            what = {"live": "live migration", "cold": "cold migration", "evacuate": "evacuation"}[move.method]
            details = getattr(error, "details", None) or error
            return f"nova refused the {what}: {details}"
        return None

    def wait(self, host, moves):
        """Follows the moves until each has settled on another host, or failed, or the time is up."""
        deadline = time.monotonic() + self.params["timeout"]
        pending, moved, stuck = list(moves), [], []
        while pending:
            still = []
            for move in pending:
                try:
                    server = self.conn.compute.get_server(move.id)
                except self.sdk.exceptions.NotFoundException:
                    self.warn(f"{move.name} ({move.id}) was deleted while it moved off {host}")
                    continue
                move.seen(server)
                outcome = self.step(host, move, server)
                if outcome is True:
                    moved.append(move.moved(host))
                elif outcome:
                    stuck.append(move.not_moved(outcome))
                else:
                    still.append(move)
            pending = still
            if pending and time.monotonic() >= deadline:
                for move in pending:
                    task = f", task {move.task_state}" if move.task_state else ""
                    stuck.append(
                        move.not_moved(
                            f"still {move.status}{task} on {move.host} after {self.params['timeout']} s; nova goes "
                            "on with it: run again to wait for it"
                        )
                    )
                break
            if pending:
                time.sleep(POLL_INTERVAL)
        return moved, stuck

    def step(self, host, move, server):
        """True once the server settled elsewhere, a reason once it failed, None while it moves."""
        if server.task_state:
            return None
        if server.status == "ERROR":
            fault = (server.fault or {}).get("message") or "no fault recorded"
            return f"went to ERROR during the {move.method} move: {fault}"
        if server.status == "VERIFY_RESIZE" and server.compute_host != host:
            if move.method != "cold":
                return (
                    f"migrated to {server.compute_host} by a move this task did not start, awaiting confirmation: "
                    f"confirm or revert it (openstack server resize confirm|revert {move.id})"
                )
            if not move.confirmed:
                try:
                    self.conn.compute.confirm_server_resize(move.id)
                except self.sdk.exceptions.SDKException as error:
                    return (
                        f"migrated to {server.compute_host}, but nova refused to confirm it: "
                        f"{getattr(error, 'details', None) or error}"
                    )
                move.confirmed = True
            return None
        if server.status in SETTLED_STATUSES:
            if server.compute_host != host:
                return True
            return f"the {move.method} move ended with the instance still on {host}{self.last_migration(move)}"
        return None

    def last_migration(self, move):
        try:
            migrations = list(self.conn.compute.migrations(server_id=move.id))
        except self.sdk.exceptions.SDKException:
            return ""
        if not migrations:
            return ""
        last = max(migrations, key=lambda migration: str(migration.created_at or ""))
        return (
            f" (nova's {last.migration_type or 'migration'} to {last.dest_compute or 'a host'}: {last.status}; "
            f"see 'openstack server event list {move.id}')"
        )

    def finish(self, host, service, changed, service_change, moved, not_moved, would=False):
        """Exits with what was done (or would be), and fails when an instance stays on the host."""
        done = []
        if service_change:
            done.append(service_change)
        if moved:
            counts = {}
            for entry in moved:
                counts[entry["method"]] = counts.get(entry["method"], 0) + 1
            how = ", ".join(f"{count} {method}" for method, count in sorted(counts.items()))
            verb = "would move" if would else "moved"
            done.append(f"{verb} {len(moved)} instance(s) ({how})")
        result = dict(changed=changed, service=service, moved=moved, not_moved=not_moved)
        summary = ", ".join(done)
        if not_moved:
            verb, stays = ("would not move", "would stay") if would else ("did not move", "stays")
            self.fail_json(
                msg=f"{host}: {summary + '; ' if summary else ''}{verb} {len(not_moved)} instance(s), and the host "
                f"{stays} disabled: {listing(not_moved)}",
                **result,
            )
        if not done:
            done.append("already disabled and empty")
        self.exit_json(msg=f"{host}: " + ", ".join(done), **result)


def main():
    module = ComputeHostModule()
    module()


if __name__ == "__main__":
    main()

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: volume_service
short_description: Enable, disable, freeze or thaw a cinder service, or check that its record is gone
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Sets the status of one cinder service (C(openstack volume service set)), which
    M(openstack.cloud.volume_service_info) only lists. The scheduler places no new volumes on a disabled
    V(cinder-volume) backend and cinder sends no new backups to a disabled V(cinder-backup); what they already hold
    stays where it is. Cinder does not route by the status of a V(cinder-scheduler), which keeps taking requests
    while disabled: stop the service to take it out.
  - >-
    O(disabled_reason) records why the service is disabled, and replaces the reason of a service that is already
    disabled.
  - >-
    O(frozen) freezes or thaws a V(cinder-volume) backend (C(os-services/freeze) and C(os-services/thaw)). A frozen
    backend keeps serving its volumes (attach, detach, I/O), but until it is thawed the scheduler places no new
    volume on it and cinder refuses to delete its volumes and to create or delete their snapshots. The running
    cinder-volume service carries it out: freezing also disables the service with the reason V(frozen), thawing
    also enables it.
  - >-
    Cinder has no API that deletes a service record (that is C(cinder-manage service remove) on a controller).
    O(state=absent) therefore only checks that the record is gone: it is unchanged when there is none and fails
    otherwise, saying what to run. See O(state).
  - Reports C(changed) only when the service differs from what is asked.
options:
  binary:
    description:
      - The cinder service.
    type: str
    required: true
    choices: [cinder-volume, cinder-scheduler, cinder-backup]
  host:
    description:
      - >-
        The host of the service, exactly as C(openstack volume service list) shows it: C(host@backend) for
        V(cinder-volume) (V(rbd@rbd) for Stackwright's shared RBD backend, which one record represents for every
        controller), the host's name for V(cinder-scheduler) (a controller) and V(cinder-backup) (a storage host).
    type: str
    required: true
  state:
    description:
      - V(enabled) and V(disabled) set the status of the service. They fail when cinder has no such service.
      - >-
        V(absent) is unchanged when cinder has no such service and fails when it has one, with the commands that
        remove it (stop the service on every host that runs it, then C(cinder-manage service remove) on a
        controller). Use it after those commands to check that the record is gone.
    type: str
    choices: [enabled, disabled, absent]
    default: enabled
  disabled_reason:
    description:
      - >-
        With O(state=disabled), the reason recorded for the service (1 to 255 characters). A different reason
        replaces the current one. Unset keeps the current reason.
      - >-
        Cinder cannot clear a reason (it takes only a non-empty one), and keeps the last one when the service is
        enabled again; C(openstack volume service list) may therefore show a reason for an enabled service.
    type: str
  frozen:
    description:
      - V(true) freezes the V(cinder-volume) backend, V(false) thaws it. Unset leaves it.
      - >-
        V(true) needs O(state=disabled), because cinder disables a frozen backend itself (with the reason
        V(frozen), unless O(disabled_reason) gives another one, which the module sets after the freeze).
      - >-
        V(false) thaws first; cinder then enables the service, and with O(state=disabled) the module disables it
        again (so for a moment the backend is enabled).
      - >-
        Freezing and thawing need the cinder-volume service up (cinder asks it over RPC); the module refuses
        while cinder reports it down. With O(state=enabled), a service that is frozen fails unless O(frozen=false)
        thaws it, since an enabled but frozen backend still gets no new volumes and refuses deletions and snapshots.
      - In an active-active cluster (cinder's C(cluster) option), cinder freezes and thaws the whole cluster.
    type: bool
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: Runs every check and reports what would change, and the service as it would be, without a write call.
notes:
  - Needs admin credentials of the cloud (cinder's default policy allows these calls to admins only).
  - >-
    Services whose host Stackwright shares (V(cinder-volume) on V(rbd@rbd)) have one record for every controller:
    disabling or freezing it acts on the backend as a whole.
  - >-
    After a change the module lists the service again and fails unless cinder lists it as asked, because cinder can
    answer success for a change it did not save. Cinder 29.0.0 (2026.2) does so for C(os-services/enable) and
    C(os-services/disable) (only C(disable-log-reason), freeze and thaw save a status there): on that release
    disable with a O(disabled_reason), and expect O(state=enabled) to fail on a disabled V(cinder-scheduler) or
    V(cinder-backup) (a frozen V(cinder-volume) is enabled again by O(frozen=false)).
seealso:
  - module: openstack.cloud.volume_service_info
    description: List the cinder services.
  - name: Block Storage API, services (os-services)
    description: Enable, disable with a reason, freeze and thaw.
    link: https://docs.openstack.org/api-ref/block-storage/v3/#services-os-services
  - name: cinder-manage service remove
    description: Deletes the record of a service that no longer runs.
    link: https://docs.openstack.org/cinder/latest/cli/cinder-manage.html
"""

EXAMPLES = r"""
- name: Stop scheduling backups to ctl2 during its maintenance
  stackwright.cloud.volume_service:
    cloud: admin
    binary: cinder-backup
    host: ctl2
    state: disabled
    disabled_reason: "maintenance: kernel update"

- name: Freeze the RBD backend while Ceph is upgraded (volumes stay attached, no create or delete)
  stackwright.cloud.volume_service:
    cloud: admin
    binary: cinder-volume
    host: rbd@rbd
    state: disabled
    frozen: true
    disabled_reason: "frozen: ceph upgrade"

- name: Thaw it and enable it again
  stackwright.cloud.volume_service:
    cloud: admin
    binary: cinder-volume
    host: rbd@rbd
    state: enabled
    frozen: false

- name: Remove the record of cinder-backup of the decommissioned ctl3 (stopped there)
  ansible.builtin.command:
    # cinder-manage is in cinder's venv on the controllers (/openstack/venvs/cinder-<version>/bin).
    cmd: /openstack/venvs/cinder-29.0.0/bin/cinder-manage service remove cinder-backup ctl3
  delegate_to: ctl1

- name: Check that cinder no longer lists it
  stackwright.cloud.volume_service:
    cloud: admin
    binary: cinder-backup
    host: ctl3
    state: absent
"""

RETURN = r"""
service:
  description:
    - The service after the task, as cinder lists it. In check mode, as it would be after the task.
    - With O(state=absent), null (the module fails when the record still exists).
  returned: always
  type: dict
  contains:
    binary:
      description: The service.
      type: str
      sample: cinder-backup
    host:
      description: The host of the service (C(host@backend) for cinder-volume).
      type: str
      sample: ctl2
    zone:
      description: Availability zone of the service.
      type: str
      sample: nova
    status:
      description: V(enabled) or V(disabled).
      type: str
      sample: disabled
    state:
      description: V(up) or V(down) (whether the service reports in).
      type: str
      sample: up
    disabled_reason:
      description: The recorded reason, null or empty when there is none. Cinder keeps it after an enable.
      type: str
      sample: "maintenance: kernel update"
    frozen:
      description: Whether the backend is frozen; null for services other than cinder-volume.
      type: bool
      sample: false
    cluster:
      description: The cluster of the service, null when it is in none.
      type: str
      sample: null
    updated_at:
      description: When the service last reported in or was changed.
      type: str
      sample: "2026-12-02T08:14:07.000000"
msg:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: "cinder-backup on ctl2: disabled with reason 'maintenance: kernel update'"
"""

from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule

VOLUME_BINARY = "cinder-volume"
BINARIES = ("cinder-volume", "cinder-scheduler", "cinder-backup")
# Cinder's schema for disable-log-reason: 1 to 255 characters, not only whitespace.
MAX_REASON = 255
# What cinder-volume records when it freezes (cinder.volume.manager.VolumeManager.freeze_host).
FROZEN_REASON = "frozen"


def service_dict(service):
    return {
        "binary": service.binary,
        "host": service.host,
        "zone": service.availability_zone,
        "status": service.status,
        "state": service.state,
        "disabled_reason": service.disabled_reason,
        "frozen": service.is_frozen,
        "cluster": service.cluster,
        "updated_at": service.updated_at,
    }


def listing(services):
    return ", ".join(f"{service.binary} on {service.host}" for service in services) or "none"


class VolumeServiceModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        binary=dict(type="str", required=True, choices=list(BINARIES)),
        host=dict(type="str", required=True),
        state=dict(type="str", default="enabled", choices=["enabled", "disabled", "absent"]),
        disabled_reason=dict(type="str"),
        frozen=dict(type="bool"),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        binary, host, state = self.params["binary"], self.params["host"], self.params["state"]
        self.check_options(binary, state)
        service, services = self.find(binary, host)
        if state == "absent":
            self.absent(binary, host, service)
        if service is None:
            self.fail_missing(binary, host, services)
        self.status(binary, host, state, service)

    def check_options(self, binary, state):
        reason, frozen = self.params["disabled_reason"], self.params["frozen"]
        if state == "absent" and (reason is not None or frozen is not None):
            self.fail_json(msg="disabled_reason and frozen apply to state enabled or disabled; drop them with absent")
        if reason is not None:
            if state != "disabled":
                self.fail_json(
                    msg="disabled_reason applies to state=disabled only (cinder sets a reason only when it disables a "
                    "service); set state: disabled or drop it"
                )
            if not reason.strip() or len(reason) > MAX_REASON:
                self.fail_json(
                    msg=f"cinder takes a disabled_reason of 1 to {MAX_REASON} characters, not blank (it cannot clear "
                    f"a reason); this one has {len(reason)}. Leave it unset to keep the current reason."
                )
        if frozen is not None:
            if binary != VOLUME_BINARY:
                self.fail_json(msg=f"only cinder-volume backends can be frozen or thawed, not {binary}; drop frozen")
            if frozen and state != "disabled":
                self.fail_json(
                    msg="frozen: true needs state: disabled, because cinder disables a frozen backend itself "
                    f"(reason {FROZEN_REASON!r}); set state: disabled, with a disabled_reason if you want another one"
                )

    def find(self, binary, host):
        """The service of binary on host, or None, and every service cinder lists (to name them on a miss)."""
        services = sorted(self.conn.block_storage.services(), key=lambda service: (service.binary, service.host))
        found = [service for service in services if service.binary == binary and service.host == host]
        if len(found) > 1:
            self.fail_json(
                msg=f"cinder lists {len(found)} {binary} services on host {host!r}; remove the stale record on a "
                f"controller (cinder-manage service remove {binary} {host}) and run again"
            )
        return (found[0] if found else None), services

    def fail_missing(self, binary, host, services):
        hint = ""
        if binary == VOLUME_BINARY and "@" not in host:
            hint = " A cinder-volume host is host@backend (rbd@rbd for Stackwright's shared RBD backend)."
        elif binary != VOLUME_BINARY and "@" in host:
            hint = f" Only cinder-volume hosts carry @backend; {binary} runs under the controller's name."
        self.fail_json(
            msg=f"cinder has no {binary} service on host {host!r}. Cinder's services: {listing(services)}.{hint} "
            "Give the host as 'openstack volume service list' shows it, or start the service there so that it "
            "registers."
        )

    def status(self, binary, host, state, service):
        current = service_dict(service)
        reason, frozen = self.params["disabled_reason"], self.params["frozen"]
        if state == "enabled" and frozen is None and current["frozen"]:
            self.fail_json(
                msg=f"{binary} on {host} is frozen: enabled alone, it would still get no new volumes, and cinder "
                "would still refuse to delete its volumes or snapshot them. Add frozen: false to thaw it (cinder then "
                "enables it too), or keep it disabled.",
                service=current,
            )

        # Each step: (action, argument, past tense, imperative); predicted is the service after the steps.
        steps, predicted = [], dict(current)
        if frozen is not None and frozen != bool(current["frozen"]):
            if current["state"] != "up":
                self.fail_json(
                    msg=f"cannot {'freeze' if frozen else 'thaw'} {binary} on {host}: cinder reports it down, and "
                    f"cinder asks the running service to do it. Start {binary} (systemctl start {binary} on the "
                    "controllers) and wait until 'openstack volume service list' shows it up.",
                    service=current,
                )
            if frozen:
                steps.append(("freeze", None, "frozen", "freeze"))
                predicted.update(frozen=True, status="disabled", disabled_reason=FROZEN_REASON)
            else:
                steps.append(("thaw", None, "thawed", "thaw"))
                predicted.update(frozen=False, status="enabled", disabled_reason=None)

        if state == "enabled" and predicted["status"] != "enabled":
            steps.append(("enable", None, "enabled", "enable"))
            predicted["status"] = "enabled"
        elif state == "disabled":
            with_reason = f" with reason {reason!r}" if reason is not None else ""
            if predicted["status"] != "disabled":
                steps.append(("disable", reason, f"disabled{with_reason}", f"disable{with_reason}"))
                predicted["status"] = "disabled"
                if reason is not None:
                    predicted["disabled_reason"] = reason
            elif reason is not None and reason != predicted["disabled_reason"]:
                steps.append(("disable", reason, f"reason set to {reason!r}", f"set the reason to {reason!r}"))
                predicted["disabled_reason"] = reason

        if not steps:
            self.exit_json(changed=False, service=current, msg=f"{binary} on {host}: already {state}")
        if self.check_mode:
            would = " and ".join(step[3] for step in steps)
            self.exit_json(changed=True, service=predicted, msg=f"{binary} on {host}: would {would}")

        done = []
        for action, argument, past, _imperative in steps:
            try:
                self.apply(action, argument, service)
            except self.sdk.exceptions.SDKException as error:
                self.fail_json(
                    msg=f"cinder refused to {action} {binary} on {host}: {error}"
                    + (f" (already {', '.join(done)})" if done else ""),
                    changed=bool(done),
                    service=current,
                )
            done.append(past)
        after, _services = self.find(binary, host)
        self.verify(binary, host, current, predicted, after, reason)
        self.exit_json(changed=True, service=service_dict(after), msg=f"{binary} on {host}: " + ", ".join(done))

    def verify(self, binary, host, current, predicted, after, reason):
        """Fail unless cinder now lists the service as asked: cinder answers success for writes it did not save."""
        if after is None:
            self.fail_json(
                msg=f"cinder no longer lists {binary} on {host} after the change; someone removed its record",
                changed=True,
                service=None,
            )
        now = service_dict(after)
        keys = ["status", "frozen"] + (["disabled_reason"] if reason is not None else [])
        wrong = [key for key in keys if now[key] != predicted[key]]
        if not wrong:
            return
        hints = []
        if "status" in wrong and reason is None:
            hints.append(
                "Cinder 29.0.0 (2026.2) answers os-services/enable and os-services/disable with success but saves "
                "nothing; only disable-log-reason (a disabled_reason) and freeze/thaw change the status there. "
                + (
                    "To disable, give a disabled_reason."
                    if predicted["status"] == "disabled"
                    else "No API call enables the service on that release: in cinder's database, set disabled to 0 "
                    f"and disabled_reason to NULL in the row of the services table with binary {binary!r}, host "
                    f"{host!r} and deleted 0, or move to a cinder that has the fix."
                )
            )
        differences = ", ".join(f"{key} {now[key]!r} instead of {predicted[key]!r}" for key in wrong)
        self.fail_json(
            msg=f"cinder accepted the change of {binary} on {host} but lists it with {differences}. " + " ".join(hints),
            changed=any(now[key] != current[key] for key in ("status", "frozen", "disabled_reason")),
            service=now,
        )

    def apply(self, action, argument, service):
        block_storage = self.conn.block_storage
        if action == "freeze":
            block_storage.freeze_service(service)
        elif action == "thaw":
            block_storage.thaw_service(service)
        elif action == "enable":
            block_storage.enable_service(service)
        else:
            # Without a reason, cinder's plain disable keeps the current one.
            block_storage.disable_service(service, reason=argument)

    def absent(self, binary, host, service):
        if service is None:
            self.exit_json(changed=False, service=None, msg=f"no {binary} on {host}, nothing to remove")
        current = service_dict(service)
        if current["state"] == "up":
            first = (
                f"{binary} on {host} still reports up (last at {current['updated_at']}), and a running service "
                f"registers itself again. Stop it (systemctl stop {binary}"
                + (" on every controller that serves the backend" if binary == VOLUME_BINARY else f" on {host}")
                + ") and wait until cinder shows it down; then "
            )
        else:
            first = f"It reports down: make sure {binary} will not start there again (disable its unit), then "
        self.fail_json(
            msg=f"cinder still lists {binary} on {host}, and has no API to delete a service record. {first}"
            f"remove the record on a cinder controller: cinder-manage service remove {binary} {host} (cinder-manage "
            "is in cinder's venv). Then run this task again to check.",
            service=current,
        )


def main():
    module = VolumeServiceModule()
    module()


if __name__ == "__main__":
    main()

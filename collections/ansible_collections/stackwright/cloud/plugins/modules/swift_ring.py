# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swift_ring
short_description: Keep a Swift ring builder in step with a list of devices, rebalancing only on a change
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Creates the builder file O(builder_file) when it does not exist, sets the replica count and O(min_part_hours),
    adds missing devices and updates the weight of known ones.
  - Rebalances and writes the builder and the ring file O(ring_file) only when the builder changed (a new builder,
    new devices, new weights, a new replica count or O(min_part_hours)), or writes the ring file without a rebalance
    when only the ring file is missing. An unchanged builder is neither rebalanced nor rewritten, so a re-run reports
    no change.
  - Before the builder file is replaced, the old one is copied to C(backups/<unix time>.<name>.builder) beside it,
    as C(swift-ring-builder) does.
  - Devices in the builder that O(devices) does not name are left alone, with a warning, and reported in
    RV(unknown_devices); remove them by hand with C(swift-ring-builder <builder> remove ...).
  - A known device whose zone or region differs from O(devices) is refused (the task fails and writes nothing);
    moving a device to another failure domain means removing and re-adding it, which is left to the operator.
  - Uses Swift's own ring builder (C(swift.common.ring.RingBuilder)), so it must run with a Python that can import
    C(swift), the interpreter of swift's venv (set C(ansible_python_interpreter) on the task); it fails with the
    interpreter it ran with when it cannot import it.
options:
  builder_file:
    description: Path of the builder file (C(<ring>.builder)).
    type: path
    required: true
  ring_file:
    description: Path of the ring file (C(<ring>.ring.gz)).
    type: path
    required: true
  part_power:
    description:
      - Partition power of a new builder.
      - An existing builder keeps its own; a different value only gives a warning.
    type: int
    required: true
  replicas:
    description: Replica count.
    type: int
    required: true
  min_part_hours:
    description: Hours before a partition may move again after a rebalance.
    type: int
    default: 1
  devices:
    description:
      - Every device the ring should hold, each a dict with C(ip) (the address the storage server listens on),
        C(port) (of the server this ring is for), C(device) (the directory under the servers' C(/srv/node)),
        C(weight), C(zone) and C(region), all required. Other keys are ignored.
      - A device is known by its C(ip), C(port) and C(device); its replication address is the same C(ip) and
        C(port). The zone and region of a known device cannot be changed.
    type: list
    elements: dict
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Loads the builder and reports the changes it would make and whether it would rebalance; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - swift (C(swift.common.ring)), in the Python that runs the module
notes:
  - Run it on one host only (the ring builder host, with C(run_once)), then copy the ring files to every swift host.
  - The rebalance itself is Swift's; when it fails, Swift's error is in the failure message and nothing is written.
seealso:
  - name: The rings
    description: Swift's documentation of rings, partitions, zones and regions.
    link: https://docs.openstack.org/swift/latest/overview_ring.html
"""

EXAMPLES = r"""
- name: Build the object ring from two storage hosts' disks
  stackwright.cloud.swift_ring:
    builder_file: /etc/swift/object.builder
    ring_file: /etc/swift/object.ring.gz
    part_power: 10
    replicas: 3
    min_part_hours: 1
    devices:
      - {ip: 10.0.0.21, port: 6200, device: sdb, weight: 100, zone: 1, region: 1}
      - {ip: 10.0.0.21, port: 6200, device: sdc, weight: 100, zone: 1, region: 1}
      - {ip: 10.0.0.22, port: 6200, device: sdb, weight: 100, zone: 2, region: 1}
  vars:
    # swift's ring builder is importable only in swift's venv.
    ansible_python_interpreter: /openstack/venvs/swift-2.38.3/bin/python3
  delegate_to: "{{ groups['storage'] | first }}"
  run_once: true
  register: object_ring

- name: Say which devices only the builder knows
  ansible.builtin.debug:
    msg: "Remove by hand if retired: {{ object_ring.unknown_devices | join(', ') }}"
  when: object_ring.unknown_devices | length > 0
"""

RETURN = r"""
rebalanced:
  description:
    - Whether the builder and ring files were written (in check mode, would be written); the same as C(changed).
    - The ring is rebalanced only when RV(changes) is not empty; a missing ring file alone is written from the
      builder as it is.
  type: bool
  returned: always
  sample: true
changes:
  description: What changed (in check mode, would change) in the builder, one line each.
  type: list
  elements: str
  returned: always
  sample: ["add 10.0.0.22:6200/sdb", "weight 10.0.0.21:6200/sdc 200.0"]
unknown_devices:
  description: Devices in the builder that O(devices) does not name (C(ip:port/device)), left in place.
  type: list
  elements: str
  returned: always
  sample: ["10.0.0.23:6200/sdb"]
"""

import os
import shutil
import sys
import time

from ansible.module_utils.basic import AnsibleModule

try:
    from swift.common.ring import RingBuilder
except ImportError as exc:
    RingBuilder = None
    SWIFT_IMPORT_ERROR = str(exc)
else:
    SWIFT_IMPORT_ERROR = None


def _key(dev):
    return (dev["ip"], int(dev["port"]), dev["device"])


def main():
    module = AnsibleModule(
        argument_spec={
            "builder_file": {"type": "path", "required": True},
            "ring_file": {"type": "path", "required": True},
            "part_power": {"type": "int", "required": True},
            "replicas": {"type": "int", "required": True},
            "min_part_hours": {"type": "int", "default": 1},
            # No suboptions in the spec: callers pass devices with more keys (the role adds the host name).
            "devices": {"type": "list", "elements": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    if RingBuilder is None:
        module.fail_json(
            msg=f"cannot import swift's ring builder with {sys.executable}: {SWIFT_IMPORT_ERROR}; run the module "
            "with the Python of swift's venv (ansible_python_interpreter)"
        )

    p = module.params
    builder_file, ring_file = p["builder_file"], p["ring_file"]
    changes = []
    if os.path.exists(builder_file):
        builder = RingBuilder.load(builder_file)
    else:
        builder = RingBuilder(p["part_power"], p["replicas"], p["min_part_hours"])
        changes.append("new builder")
    if builder.min_part_hours != p["min_part_hours"]:
        builder.change_min_part_hours(p["min_part_hours"])
        changes.append(f"min_part_hours {p['min_part_hours']}")
    if builder.replicas != p["replicas"]:
        builder.set_replicas(p["replicas"])
        changes.append(f"replicas {p['replicas']}")

    known = {_key(d): d for d in builder.devs if d is not None}
    wanted = set()
    for spec in p["devices"]:
        key = _key(spec)
        wanted.add(key)
        weight, zone, region = float(spec["weight"]), int(spec["zone"]), int(spec["region"])
        dev = known.get(key)
        name = f"{key[0]}:{key[1]}/{key[2]}"
        if dev is None:
            builder.add_dev(
                {
                    "ip": key[0],
                    "port": key[1],
                    "device": key[2],
                    "weight": weight,
                    "zone": zone,
                    "region": region,
                    "replication_ip": key[0],
                    "replication_port": key[1],
                    "meta": "",
                }
            )
            changes.append(f"add {name}")
            continue
        if dev["weight"] != weight:
            builder.set_dev_weight(dev["id"], weight)
            changes.append(f"weight {name} {weight}")
        if dev["zone"] != zone or dev["region"] != region:
            # Moving a device between zones or regions changes its failure domain: re-add it in the new one.
            module.fail_json(
                msg=f"{name} is in region {dev['region']} zone {dev['zone']} in {builder_file}; moving "
                f"it to region {region} zone {zone} needs swift-ring-builder by hand"
            )
    unknown = sorted(f"{k[0]}:{k[1]}/{k[2]}" for k in known if k not in wanted)
    if unknown:
        module.warn(f"{builder_file} has devices the inventory does not name (left in place): {', '.join(unknown)}")
    if builder.part_power != p["part_power"]:
        module.warn(f"{builder_file} keeps its partition power {builder.part_power}, not {p['part_power']}")

    rebalance = bool(changes) or not os.path.exists(ring_file)
    if rebalance and not module.check_mode:
        if changes:
            try:
                builder.rebalance()
            except Exception as exc:  # the builder's errors (EmptyRingError, RingValidationError...) say what to fix
                module.fail_json(msg=f"rebalancing {builder_file} failed: {exc}", changes=changes)
        ring_dir = os.path.dirname(builder_file)
        backups = os.path.join(ring_dir, "backups")
        os.makedirs(backups, exist_ok=True)
        stamp = f"{time.time():.0f}"
        if os.path.exists(builder_file):
            shutil.copy2(builder_file, os.path.join(backups, f"{stamp}.{os.path.basename(builder_file)}"))
        builder.save(builder_file + ".tmp")
        os.replace(builder_file + ".tmp", builder_file)
        # RingData.save replaces the file atomically, with a fixed gzip mtime: the same ring, the same bytes.
        builder.get_ring().save(ring_file)
    module.exit_json(changed=rebalance, rebalanced=rebalance, changes=changes, unknown_devices=unknown)


if __name__ == "__main__":
    main()

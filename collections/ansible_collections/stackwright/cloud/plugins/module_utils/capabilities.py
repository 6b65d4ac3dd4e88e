# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Linux capabilities: their names and bits (linux/capability.h), and which of them a process's bounding set lacks.

Pure Python, shared by the registry schema and the missing_capabilities filter.
"""

from __future__ import annotations

CAPABILITY_BITS = {
    name: bit
    for bit, name in enumerate(
        (
            "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
            "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
            "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
            "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
            "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
            "CHECKPOINT_RESTORE",
        )
    )
}  # fmt: skip


class CapabilityError(ValueError):
    """An unknown capability name, or a status text without a bounding set."""


def bounding_set(proc_status):
    """The CapBnd mask of a /proc/<pid>/status text."""
    for line in proc_status.splitlines():
        key, _sep, value = line.partition(":")
        if key == "CapBnd":
            try:
                return int(value.strip(), 16)
            except ValueError:
                raise CapabilityError(f"CapBnd is not a hexadecimal mask: {value.strip()!r}") from None
    raise CapabilityError("no CapBnd line: not the text of /proc/<pid>/status")


def missing_capabilities(proc_status, names):
    """The names (without CAP_, in the order given, once each) that the status's bounding set lacks."""
    unknown = [name for name in names if name not in CAPABILITY_BITS]
    if unknown:
        raise CapabilityError(f"unknown capabilities {', '.join(unknown)} (names as in capabilities(7), without CAP_)")
    mask = bounding_set(proc_status)
    return [name for name in dict.fromkeys(names) if not mask >> CAPABILITY_BITS[name] & 1]

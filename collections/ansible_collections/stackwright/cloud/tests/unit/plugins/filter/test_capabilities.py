# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filter stackwright.cloud.missing_capabilities."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.capabilities import FilterModule
from ansible_collections.stackwright.cloud.plugins.module_utils.capabilities import CAPABILITY_BITS

missing_capabilities = FilterModule().filters()["missing_capabilities"]


def status(cap_bnd):
    """A /proc/<pid>/status text with this bounding set (the lines around it as the kernel writes them)."""
    return (
        "Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n"
        f"CapEff:\t000001ffffffffff\nCapBnd:\t{cap_bnd}\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n"
    )


# podman's default set for an unprivileged container: no DAC_READ_SEARCH (2), NET_ADMIN (12) or SYS_ADMIN (21).
PODMAN_DEFAULT = "00000000800405fb"
CINDER = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "NET_ADMIN", "SYS_ADMIN"]


def test_full_bounding_set_lacks_nothing():
    assert missing_capabilities(status("000001ffffffffff"), CINDER) == []


def test_podman_default_set_lacks_what_cinder_keeps():
    assert missing_capabilities(status(PODMAN_DEFAULT), CINDER) == ["DAC_READ_SEARCH", "NET_ADMIN", "SYS_ADMIN"]


def test_each_bit_maps_to_its_name():
    for name, bit in CAPABILITY_BITS.items():
        only_this = f"{1 << bit:016x}"
        assert missing_capabilities(status(only_this), [name]) == []
        others = [n for n in CAPABILITY_BITS if n != name]
        assert missing_capabilities(status(only_this), others) == others


def test_names_keep_their_order_and_appear_once():
    assert missing_capabilities(status("0"), ["SYS_ADMIN", "CHOWN", "SYS_ADMIN"]) == ["SYS_ADMIN", "CHOWN"]


def test_bit_numbers_follow_linux_capability_h():
    assert (CAPABILITY_BITS["CHOWN"], CAPABILITY_BITS["NET_ADMIN"], CAPABILITY_BITS["SYS_ADMIN"]) == (0, 12, 21)
    assert (CAPABILITY_BITS["AUDIT_READ"], CAPABILITY_BITS["CHECKPOINT_RESTORE"]) == (37, 40)
    assert sorted(CAPABILITY_BITS.values()) == list(range(41))


@pytest.mark.parametrize(
    ("text", "names", "message"),
    [
        (status("ffff"), ["CAP_SYS_ADMIN"], "unknown capabilities CAP_SYS_ADMIN"),
        (status("ffff"), ["sys_admin"], "unknown capabilities sys_admin"),
        ("Name:\tbash\n", ["CHOWN"], "no CapBnd line"),
        (status("zz"), ["CHOWN"], "CapBnd is not a hexadecimal mask: 'zz'"),
        (None, ["CHOWN"], "expects the text of /proc/<pid>/status, got NoneType"),
        (status("ffff"), "CHOWN", "names must be a list of capability names"),
    ],
)
def test_bad_input_is_named(text, names, message):
    with pytest.raises(AnsibleFilterError, match="missing_capabilities: " + message.replace("(", r"\(")):
        missing_capabilities(text, names)

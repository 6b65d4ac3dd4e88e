"""The lab's provider bridge across a restart of its network host. Runs after every other check of the scenario: it
restarts that host."""

import subprocess
from pathlib import Path


def test_the_provider_bridge_keeps_tx_offload_off_when_its_host_restarts(inventory, podman_env):
    """netavark deletes a network's bridge when its last container stops and makes a new one when one starts; the
    lab's hook must switch the new bridge's TX checksum offload off (with it on, the gateway chassis drops the deploy
    host's TCP packets to the floating IPs)."""
    lab_name = next(iter(inventory["hostvars"].values()))["lab_name"]
    hosts = inventory["groups"]["network"]

    def podman(*args):
        return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, env=podman_env).stdout

    bridge = podman("network", "inspect", "--format", "{{.NetworkInterface}}", f"{lab_name}-provider").strip()
    index_before = Path(f"/sys/class/net/{bridge}/ifindex").read_text()
    podman("restart", *hosts)
    for name in hosts:
        # Until it has booted (a degraded boot is test_foundation.py's business, not this test's).
        subprocess.run(["podman", "exec", name, "systemctl", "is-system-running", "--wait"], capture_output=True,
                       env=podman_env, check=False)  # fmt: skip
    assert Path(f"/sys/class/net/{bridge}/ifindex").read_text() != index_before, (
        f"{bridge} was not made anew by the restart of {hosts}: this test no longer shows what the hook does")
    features = subprocess.run(["ethtool", "-k", bridge], check=True, capture_output=True, text=True).stdout
    assert "tx-checksumming: off" in features.splitlines(), features

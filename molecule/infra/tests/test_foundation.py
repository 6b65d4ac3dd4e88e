"""The lab and the prepared hosts (prechecks, host_prepare) over SSH, and the deploy host that made them. Runs first:
later checks of the scenario restart services and hosts."""

import glob
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SYSCTLS = {
    "net.ipv4.ip_nonlocal_bind": "1",
    "net.ipv4.ip_forward": "1",
    "net.ipv4.tcp_keepalive_time": "300",
}


def test_systemd_is_running(host):
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_base_packages_installed(host):
    for name in ("python3-apt", "ca-certificates", "curl", "iproute2"):
        assert host.package(name).is_installed, name


def test_apt_sources_managed(host):
    sources = host.file("/etc/apt/sources.list.d/debian.sources")
    assert sources.contains("trixie-security")
    assert not host.file("/etc/apt/sources.list").exists


def test_apt_update_records_its_success(host):
    # ansible's apt cache_valid_time reads this stamp; without it every re-run updates the index again.
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    before = int(host.check_output("date +%s"))
    host.run_test("apt-get update -qq")
    assert int(host.check_output(f"stat -c %Y {stamp}")) >= before


def test_every_inventory_host_resolves_to_its_management_address(host, inventory):
    for name, hv in inventory["hostvars"].items():
        assert host.run(f"getent hosts {name}").stdout.split()[0] == hv["management_address"], name


def test_extra_ca_certificates_trusted(host):
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    extra = sorted(glob.glob("/usr/local/share/ca-certificates/*.crt"))
    for path in extra:
        with open(path) as handle:
            body = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", handle.read(), re.S).group(0)
        assert body.replace("\r", "") in bundle, path


def test_sysctls_live_and_persisted(host):
    persisted = host.file("/etc/sysctl.d/60-stackwright.conf")
    for key, value in SYSCTLS.items():
        assert host.run(f"sysctl -n {key}").stdout.strip() == value, key
        assert persisted.contains(f"^{re.escape(key)} *= *{value}$"), key


def test_privileged_only_where_needed(host, inventory):
    name = host.backend.get_hostname()
    needs_privilege = any(name in inventory["groups"][g] for g in ("compute", "network", "storage"))
    writable = host.run("test -w /proc/sys/net/ipv4/ip_forward").rc == 0
    assert writable == needs_privilege


def test_tunnel_nic_only_on_tunnel_hosts(host, hostvars):
    addresses = host.run("ip -o -4 addr show").stdout
    assert hostvars["management_address"] + "/" in addresses
    if "tunnel_address" in hostvars:
        assert hostvars["tunnel_address"] + "/" in addresses
    else:
        # By interface: a controller that holds the VIPs has them on its management NIC too.
        assert len({line.split()[1] for line in addresses.splitlines()} - {"lo"}) == 1, addresses


def test_hosts_have_their_own_identity(inventory, remote):
    """machine-id and SSH host keys are made per host at first boot, never copied from the image."""
    seen = {}
    for name in inventory["hostvars"]:
        ident = (remote(name).file("/etc/machine-id").content_string.strip(),
                 remote(name).file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()[1])
        assert all(ident[0] != other[0] and ident[1] != other[1] for other in seen.values()), name
        seen[name] = ident


def test_lab_containers_selected_by_label(inventory, podman_env):
    env = podman_env
    lab_name = next(iter(inventory["hostvars"].values()))["lab_name"]
    names = subprocess.run(["podman", "ps", "--filter", f"label=stackwright.lab={lab_name}", "--format", "{{.Names}}"],
                           check=True, capture_output=True, text=True, env=env).stdout.split()
    assert sorted(names) == sorted(inventory["hostvars"])


def cpus_allowed(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Cpus_allowed_list:"))


def test_lab_hosts_may_run_on_every_cpu_of_this_machine(inventory, podman_env):
    """Nothing pins the lab hosts (and the cloud in them) to some of this machine's CPUs; Mitogen's CPU pinning once
    put every lab host on one core of two."""
    machine = cpus_allowed(1)
    for name in inventory["hostvars"]:
        pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", name], check=True,
                             capture_output=True, text=True, env=podman_env).stdout.strip()  # fmt: skip
        assert cpus_allowed(pid) == machine, name


def test_lab_create_again_changes_nothing(playbook_runner):
    run, recap = playbook_runner(REPO / "playbooks" / "lab.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap, run.stdout[-3000:]
    assert not any(recap.values()), recap


def test_secrets_file_is_private(inventory):
    mode = os.stat(os.path.join(inventory["path"], "secrets.yml")).st_mode & 0o777
    assert mode == 0o600

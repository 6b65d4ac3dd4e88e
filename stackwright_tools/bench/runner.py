# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Running the steps of a part: each command logged with its time, the lab asked about, the report written."""

import json
import os
import shlex
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stackwright_tools import REPO
from stackwright_tools.bench.ansible_output import ANSI, adhoc_failed, adhoc_results, json_document
from stackwright_tools.bench.errors import BenchError, Skip, StepFailed
from stackwright_tools.bench.floor import VENV_FLOOR_COMMAND, parse_venv_markers
from stackwright_tools.bench.machine import run_text
from stackwright_tools.bench.report import summary_line, total_seconds

LAB_PLAYBOOK = "playbooks/lab.yml"
SITE_PLAYBOOK = "playbooks/site.yml"
SECRETS_SCRIPT = "scripts/generate-secrets"
# roles/lab: containers carry this label with the lab's name; roles/lab/files/build-image.sh labels the base image.
LAB_LABEL = "stackwright.lab"
BASE_IMAGE_LABEL = "stackwright.image=base"
BASE_IMAGE_REPOSITORY = "localhost/stackwright-base"
LOG_TAIL_LINES = 40


def default_cache():
    """STACKWRIGHT_CACHE as roles/lab, roles/python_venv and scripts/build-guest-image read it."""
    return Path(os.environ.get("STACKWRIGHT_CACHE") or Path.home() / ".cache" / "stackwright")


def log_tail(path, lines=LOG_TAIL_LINES):
    try:
        text = ANSI.sub("", Path(path).read_text(errors="replace"))
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Part:
    name: str
    steps: list = field(default_factory=list)  # counted in the part's figure
    setup: list = field(default_factory=list)  # fresh hosts before the measurement, not counted
    cleanup: list = field(default_factory=list)


class Bench:
    def __init__(self, args):
        self.args = args
        self.dry_run = args.dry_run
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.artifacts = REPO / "artifacts" / "bench"
        self.log_dir = self.artifacts / "logs" / self.run_id
        self.output = Path(args.output) if args.output else self.artifacts / f"{self.run_id}.json"
        self.work_dir = (
            Path(args.work_dir) if args.work_dir else default_cache().parent / "stackwright-bench" / self.run_id
        )
        self.inventory = Path(args.inventory)
        self.multinode_inventory = Path(args.multinode_inventory)
        self.sequence = 0
        self.results = {}  # part name -> figures of the parts that succeeded in this run
        # The AIO lab as this run left it: None (untouched), "deployed", "failed" (a deploy failed) or "destroyed".
        self.aio_lab = None
        self.report = None

    # -- environment and commands

    def env(self, extra=None):
        env = dict(os.environ)
        # The venv that runs this script has ansible; its bin comes first, as `make` puts $(VENV)/bin first.
        bins = dict.fromkeys([str(Path(sys.executable).parent), str(REPO / ".venv" / "bin")])
        env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
        env.setdefault("ANSIBLE_FORCE_COLOR", "false")
        env.setdefault("PY_COLORS", "0")
        env.update(extra or {})
        return env

    def say(self, message):
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def step(self, part, name, argv, env=None, kind="steps", check=True):
        """Run one command with its output in the log directory; returns the step's record."""
        self.sequence += 1
        stem = self.log_dir / f"{self.sequence:02d}-{part.name}-{name}"
        tasks = stem.with_suffix(".tasks.jsonl")
        extra = dict(env or {}, STACKWRIGHT_TASK_TIMES=str(tasks))
        command = shlex.join(str(arg) for arg in argv)
        shown = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
        step = {"name": name, "command": f"{shown} {command}".strip(), "seconds": None, "rc": None}
        getattr(part, kind).append(step)
        if self.dry_run:
            self.say(f"[{part.name}] {name}: would run {step['command']}")
            return step
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = stem.with_suffix(".log")
        step["log"] = str(log.relative_to(REPO)) if log.is_relative_to(REPO) else str(log)
        self.say(f"[{part.name}] {name}: {step['command']} (log: {step['log']})")
        with log.open("w") as out:
            out.write(f"$ {step['command']}\n")
            out.flush()
            started = time.monotonic()
            step["started_at"] = round(time.time(), 3)
            done = subprocess.run(
                [str(arg) for arg in argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=REPO,
                env=self.env(extra),
            )
            step["seconds"] = round(time.monotonic() - started, 1)
            step["ended_at"] = round(time.time(), 3)
        step["rc"] = done.returncode
        if tasks.exists():
            step["task_times"] = str(tasks.relative_to(REPO)) if tasks.is_relative_to(REPO) else str(tasks)
        self.say(f"[{part.name}] {name}: {step['seconds']} s, exit {done.returncode}")
        if check and done.returncode != 0:
            raise StepFailed(step, log_tail(log))
        return step

    def playbook(self, part, name, inventory, playbook, *extra, env=None, kind="steps", check=True):
        return self.step(
            part, name, ["ansible-playbook", "-i", inventory, playbook, *extra], env=env, kind=kind, check=check
        )

    # -- the lab

    def inventory_info(self, inventory):
        """Hosts and lab name of an inventory, as Ansible sees them."""
        out = subprocess.run(
            ["ansible-inventory", "-i", str(inventory), "--list"],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            env=self.env(),
        )
        if out.returncode != 0:
            raise BenchError(f"ansible-inventory -i {inventory} failed: {out.stderr.strip()[-2000:]}")
        hostvars = json.loads(out.stdout)["_meta"]["hostvars"]
        if not hostvars:
            raise BenchError(f"{inventory} has no hosts")
        names = {vars_.get("lab_name") for vars_ in hostvars.values()}
        if len(names) != 1 or None in names:
            raise BenchError(f"{inventory}: every host needs the same lab_name, found {sorted(map(str, names))}")
        lab = names.pop()
        return {"hosts": sorted(hostvars), "lab_name": lab, "lab_state_dir": default_cache() / "labs" / lab}

    def venv_floor_markers(self, inventory):
        """{host: [(venv, start, end)]}: every OpenStack host installs its venvs again, alone (VENV_FLOOR_COMMAND)."""
        out = subprocess.run(
            [
                "ansible",
                "-i",
                str(inventory),
                "controller:network:compute:storage",
                "-m",
                "ansible.builtin.shell",
                "-a",
                VENV_FLOOR_COMMAND,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            env=self.env(
                {
                    "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                    "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                    # Right after a multinode deploy every host is busy: the default 10 s connect timeout is too short.
                    "ANSIBLE_TIMEOUT": "60",
                }
            ),
        )
        try:
            hosts = adhoc_results(json_document(out.stdout))
        except BenchError:
            hosts = {}
        failed = {host: result.get("msg", "failed") for host, result in hosts.items() if adhoc_failed(result)}
        if out.returncode != 0 or failed or not hosts:
            reasons = "; ".join(f"{host}: {msg}" for host, msg in sorted(failed.items()))
            raise BenchError(
                "installing the venvs again for the floor failed: "
                + (reasons or (out.stderr or out.stdout).strip()[-2000:])
            )
        return {host: parse_venv_markers(result.get("stdout", "")) for host, result in hosts.items()}

    def running_hosts(self, lab_name):
        out = run_text(
            [
                "podman",
                "ps",
                "--filter",
                f"label={LAB_LABEL}={lab_name}",
                "--filter",
                "status=running",
                "--format",
                "{{.Names}}",
            ]
        )
        return set((out or "").split())

    def deployed(self, inventory, info):
        """The lab's hosts all run and the deploy wrote the admin clouds.yaml into the inventory."""
        running = set(info["hosts"]) <= self.running_hosts(info["lab_name"])
        return running and (REPO / inventory / "clouds.yaml").is_file()

    def destroy(self, part, inventory, env=None, kind="setup", check=True):
        return self.playbook(
            part, "destroy", inventory, LAB_PLAYBOOK, "-e", "lab_state=absent", env=env, kind=kind, check=check
        )

    def deploy(self, part, inventory, env=None, kind="steps"):
        """`make aio` without its summary: fresh hosts (destroy first, not counted), then lab, secrets and site."""
        self.destroy(part, inventory, env=env)
        first = len(getattr(part, kind))
        self.playbook(part, "lab", inventory, LAB_PLAYBOOK, env=env, kind=kind)
        self.step(part, "secrets", [sys.executable, SECRETS_SCRIPT, inventory], env=env, kind=kind)
        site = self.playbook(part, "site", inventory, SITE_PLAYBOOK, env=env, kind=kind)
        return {"total_seconds": total_seconds(getattr(part, kind)[first:]), "site": site}

    def cache_state(self, cache):
        """What a warm run can reuse: wheelhouse archives, guest images, apt archives, debootstrap, base images."""
        apt = cache / "apt"
        images = run_text(
            ["podman", "images", "--filter", f"label={BASE_IMAGE_LABEL}", "--format", "{{.Repository}}:{{.Tag}}"]
        )
        return {
            "dir": str(cache),
            "wheelhouse_archives": sorted(path.name for path in (cache / "wheelhouse").glob("*.tar")),
            "guest_images": sorted(path.name for path in (cache / "guest-image").glob("*.qcow2")),
            "apt_debs": sum(1 for _ in apt.glob("*/*.deb")) if apt.is_dir() else 0,
            "debootstrap": (cache / "debootstrap").is_dir(),
            "base_images": sorted(set((images or "").split()) - {"<none>:<none>"}),
        }

    def base_images(self):
        """(id, name) of the lab base images in podman's store, which outlives every STACKWRIGHT_CACHE."""
        out = run_text(
            [
                "podman",
                "images",
                "--filter",
                f"label={BASE_IMAGE_LABEL}",
                "--format",
                "{{.ID}} {{.Repository}}:{{.Tag}}",
            ]
        )
        rows = [line.split(" ", 1) for line in (out or "").splitlines() if " " in line]
        return [(image, name) for image, name in rows if name.rsplit(":", 1)[0] == BASE_IMAGE_REPOSITORY]

    # -- report

    def write_report(self):
        if self.dry_run:
            return
        self.report["summary"] = summary_line(self.report)
        text = json.dumps(self.report, indent=2) + "\n"
        for path in (self.output, self.artifacts / "latest.json"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def skip(self, name, reason, part=None):
        self.say(f"[{name}] skipped: {reason}")
        entry = {"part": name, "reason": reason}
        if part and (part.steps or part.setup or part.cleanup):
            entry |= self.steps_of(part)  # what ran before the reason showed (e.g. the destroy of scale)
        self.report["skipped"].append(entry)

    def run_part(self, name, function):
        part = Part(name)
        self.say(f"[{name}] starting")
        try:
            figures = function(self, part)
        except Skip as reason:
            self.skip(name, str(reason), part)
        except KeyboardInterrupt:
            self.report["parts"][name] = {"status": "failed", "error": "interrupted", **self.steps_of(part)}
            self.write_report()
            raise
        except StepFailed as failure:
            self.report["parts"][name] = {
                "status": "failed",
                "error": str(failure),
                "error_tail": failure.tail,
                **self.steps_of(part),
            }
        except BenchError as error:
            self.report["parts"][name] = {"status": "failed", "error": str(error), **self.steps_of(part)}
        except Exception as error:
            # Any other error ends this part only: the other parts' figures are still worth having.
            self.report["parts"][name] = {
                "status": "failed",
                "error": f"{type(error).__name__}: {error}",
                "error_tail": traceback.format_exc(limit=-8),
                **self.steps_of(part),
            }
        else:
            if not self.dry_run:
                self.results[name] = figures
                self.report["parts"][name] = {"status": "ok", **figures, **self.steps_of(part)}
        if name in self.report["parts"] and self.report["parts"][name]["status"] == "failed":
            self.say(f"[{name}] failed: {self.report['parts'][name]['error']}")
        self.write_report()

    @staticmethod
    def steps_of(part):
        return {"steps": part.steps, "setup": part.setup, "cleanup": part.cleanup}

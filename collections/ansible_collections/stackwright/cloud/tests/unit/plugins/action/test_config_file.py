# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The stackwright.cloud.config_file action plugin, run for real by ansible-playbook against localhost."""

import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTIONS = Path(__file__).resolve().parents[7]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# Jinja drops the included file's last newline and trim_blocks the one after the tag, hence the empty line.
TEMPLATE = """\
# {{ ansible_managed }}
# from {{ template_path }}
[DEFAULT]
debug = {{ demo_debug }}
{% include 'logging.conf.j2' %}

transport_url = rabbit://one:5672/
transport_url = rabbit://two:5672/

[database]
connection = {{ demo_connection }}
"""

# Included from the role's templates/ dir, as ansible.builtin.template's search path allows.
LOGGING_TEMPLATE = """\
log_dir = /var/log/{{ role_name }}
"""

ROLE_TASKS = """\
---
- name: Write demo.conf
  stackwright.cloud.config_file:
    src: demo.conf.j2
    dest: "{{ demo_dir }}/demo.conf"
    overrides: "{{ demo_overrides }}"
    owner: "{{ demo_owner }}"
    mode: "0640"
    backup: "{{ demo_backup }}"
"""

ROLE_DEFAULTS = """\
---
demo_debug: false
demo_connection: sqlite:////var/lib/demo/demo.db
demo_overrides: {}
demo_backup: false
"""

PLAYBOOK = """\
---
- name: Demo
  hosts: localhost
  roles:
    - demo
"""


@pytest.fixture
def project(tmp_path):
    """A throw-away Ansible project with a role whose template is found through the role's templates/ dir."""
    role = tmp_path / "roles" / "demo"
    for sub, name, text in (
        ("templates", "demo.conf.j2", TEMPLATE),
        ("templates", "logging.conf.j2", LOGGING_TEMPLATE),
        ("tasks", "main.yml", ROLE_TASKS),
        ("defaults", "main.yml", ROLE_DEFAULTS),
    ):
        (role / sub).mkdir(parents=True, exist_ok=True)
        (role / sub / name).write_text(text)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "out").mkdir()
    (tmp_path / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {COLLECTIONS}\n"
        f"roles_path = {tmp_path / 'roles'}\n"
        f"inventory = {tmp_path / 'hosts'}\n"
        f"local_tmp = {tmp_path / 'ansible-tmp'}\n"
        f"remote_tmp = {tmp_path / 'remote-tmp'}\n"
        "stdout_callback = ansible.posix.json\n"
        "gathering = explicit\n"
        "retry_files_enabled = false\n"
    )
    return tmp_path


def run(project, *options, playbook="site.yml", **extra_vars):
    """Run the playbook and return {task name: localhost result}."""
    extra_vars = {"demo_dir": str(project / "out"), "demo_owner": pwd.getpwuid(os.getuid()).pw_name, **extra_vars}
    # Our own configuration only; nothing from the calling shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_CONFIG"] = str(project / "ansible.cfg")
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, playbook, "-e", json.dumps(extra_vars), *options],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    try:
        output = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"ansible-playbook rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    # Role tasks are named "<role> : <task>".
    results = {
        task["task"]["name"].split(" : ")[-1]: task["hosts"]["localhost"]
        for play in output["plays"]
        for task in play["tasks"]
    }
    return results, proc


def conf(project):
    return (project / "out" / "demo.conf").read_text()


OVERRIDES = {"DEFAULT": {"transport_url": ["rabbit://a:5672/", "rabbit://b:5672/"]}, "cache": {"enabled": True}}


def test_first_run_writes_rendered_and_merged_file_second_run_changes_nothing(project):
    results, proc = run(project, demo_overrides=OVERRIDES, demo_debug=True)
    assert proc.returncode == 0, proc.stderr
    assert results["Write demo.conf"]["changed"] is True
    assert conf(project) == (
        "# Ansible managed\n"
        "# from demo.conf.j2\n"
        "[DEFAULT]\n"
        "debug = True\n"
        "log_dir = /var/log/demo\n"
        "transport_url = rabbit://a:5672/\n"
        "transport_url = rabbit://b:5672/\n"
        "\n"
        "[database]\n"
        "connection = sqlite:////var/lib/demo/demo.db\n"
        "\n"
        "[cache]\n"
        "enabled = true\n"
    )
    assert stat.S_IMODE((project / "out" / "demo.conf").stat().st_mode) == 0o640

    results, proc = run(project, demo_overrides=OVERRIDES, demo_debug=True)
    assert proc.returncode == 0, proc.stderr
    assert results["Write demo.conf"]["changed"] is False


def test_check_mode_reports_the_change_and_its_diff_without_writing(project):
    run(project)
    before = conf(project)

    results, proc = run(project, "--check", "--diff", demo_overrides={"database": {"connection": "mysql://db/demo"}})
    assert proc.returncode == 0, proc.stderr
    result = results["Write demo.conf"]
    assert result["changed"] is True
    # copy reports one diff per file it compared.
    [diff] = result["diff"]
    assert "connection = mysql://db/demo" in diff["after"]
    assert diff["before"] == before
    assert conf(project) == before

    # A first run in check mode does not create the file either.
    (project / "out" / "demo.conf").unlink()
    results, proc = run(project, "--check")
    assert results["Write demo.conf"]["changed"] is True
    assert not (project / "out" / "demo.conf").exists()


def test_changed_overrides_are_written_with_a_backup(project):
    run(project)
    before = conf(project)

    results, proc = run(project, demo_overrides={"DEFAULT": {"debug": None}}, demo_backup=True)
    assert proc.returncode == 0, proc.stderr
    result = results["Write demo.conf"]
    assert result["changed"] is True
    assert "debug" not in conf(project)
    assert Path(result["backup_file"]).read_text() == before


ERRORS_PLAYBOOK = """\
---
- name: Errors
  hosts: localhost
  tasks:
    - name: Missing template
      stackwright.cloud.config_file:
        src: missing.conf.j2
        dest: "{{ demo_dir }}/missing.conf"
      ignore_errors: true

    - name: Unreadable rendered content
      stackwright.cloud.config_file:
        src: broken.conf.j2
        dest: "{{ demo_dir }}/broken.conf"
      ignore_errors: true

    - name: Type not guessable
      stackwright.cloud.config_file:
        src: good.j2
        dest: "{{ demo_dir }}/good"
      ignore_errors: true

    - name: Unknown type
      stackwright.cloud.config_file:
        src: good.j2
        dest: "{{ demo_dir }}/good.conf"
        type: toml
      ignore_errors: true

    - name: Section override not a mapping
      stackwright.cloud.config_file:
        src: good.conf.j2
        dest: "{{ demo_dir }}/good.conf"
        overrides:
          DEFAULT: [debug]
      ignore_errors: true

    - name: Unknown option
      stackwright.cloud.config_file:
        src: good.conf.j2
        dest: "{{ demo_dir }}/good.conf"
        bogus: 1
      ignore_errors: true

    - name: YAML with explicit type
      stackwright.cloud.config_file:
        src: good.j2
        dest: "{{ demo_dir }}/good"
        type: yaml
        overrides:
          extra: 1
"""


def test_errors_fail_the_task_with_a_clear_message_and_write_nothing(project):
    templates = project / "templates"
    templates.mkdir()
    (templates / "broken.conf.j2").write_text("[DEFAULT]\ndebug = true\n{{ 'not an option' }}\n")
    (templates / "good.j2").write_text("# {{ ansible_managed }}\nDEFAULT:\n  debug: true\n")
    (templates / "good.conf.j2").write_text("[DEFAULT]\ndebug = true\n")
    (project / "errors.yml").write_text(ERRORS_PLAYBOOK)

    results, proc = run(project, playbook="errors.yml")
    assert proc.returncode == 0, proc.stderr

    expected = {
        "Missing template": "Could not find or access 'missing.conf.j2'",
        "Unreadable rendered content": "broken.conf.j2 (rendered as ini): line 3: expected 'key = value', "
        "a [section] header or a comment, got 'not an option'",
        "Type not guessable": "set type to one of ini, yaml, json",
        "Unknown type": "value of type must be one of: ini, yaml, json, got: toml",
        "Section override not a mapping": "overrides['DEFAULT'] must be a mapping of option to value, got list",
        "Unknown option": "module: bogus. Supported parameters include",
    }
    for task, message in expected.items():
        assert results[task].get("failed") is True, task
        assert message in results[task]["msg"], (task, results[task]["msg"])
    assert sorted(p.name for p in (project / "out").iterdir()) == ["good"]

    assert results["YAML with explicit type"]["changed"] is True
    assert (project / "out" / "good").read_text() == "---\nDEFAULT:\n  debug: true\nextra: 1\n"

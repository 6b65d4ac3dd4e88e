# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""What every module test needs: AnsibleModule's exits raised as exceptions that carry the result, and its commands
answered by a fake host."""

from ansible.module_utils import basic


class ModuleResult(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class Exited(ModuleResult):
    """exit_json was called."""


class Failed(ModuleResult):
    """fail_json was called."""


def patch_module(monkeypatch, fake, bin_dir=None):
    """exit_json and fail_json raise Exited and Failed; run_command goes to fake.run_command; with bin_dir,
    get_bin_path finds every tool there."""

    def exit_json(_self, **result):
        raise Exited(result)

    def fail_json(_self, msg, **result):
        raise Failed({"msg": msg, "failed": True, **result})

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: fake.run_command(argv, **kw))
    if bin_dir:
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda _self, name, **_kw: f"{bin_dir}/{name}")

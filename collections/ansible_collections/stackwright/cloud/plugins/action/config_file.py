# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin stackwright.cloud.config_file: render a template, merge overrides into it, write it with copy.

Documentation: plugins/modules/config_file.py (ansible-doc stackwright.cloud.config_file).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.template import generate_ansible_template_vars, trust_as_template
from ansible_collections.stackwright.cloud.plugins.plugin_utils.config_merge import (
    FORMATS,
    ConfigMergeError,
    guess_format,
    merge_config,
)

# Options this plugin consumes; everything in COPY_OPTIONS goes to ansible.builtin.copy unchanged.
OWN_OPTIONS = {
    "src": {"type": "str", "required": True},
    "dest": {"type": "str", "required": True},
    "type": {"type": "str", "choices": list(FORMATS)},
    "overrides": {"type": "raw"},
}
COPY_OPTIONS = {
    name: {"type": "raw"}
    for name in (
        "owner",
        "group",
        "mode",
        "backup",
        "validate",
        "force",
        "follow",
        "attributes",
        "attr",
        "seuser",
        "serole",
        "setype",
        "selevel",
        "unsafe_writes",
    )
}
ARGUMENT_SPEC = OWN_OPTIONS | COPY_OPTIONS

# The rendering settings ansible.builtin.template uses by default.
TEMPLATE_OVERRIDES = {"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"}


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        super().run(tmp, task_vars)
        del tmp

        try:
            _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
            try:
                fmt = args["type"] or guess_format(args["dest"])
            except ConfigMergeError as e:
                raise AnsibleActionFail(str(e)) from None
            source = self._find_template(args["src"])
            rendered = self._render(source, args["src"], args["dest"], task_vars)
            try:
                content = merge_config(rendered, fmt, args["overrides"])
            except ConfigMergeError as e:
                raise AnsibleActionFail(f"{args['src']} (rendered as {fmt}): {e}") from None
            return self._copy(source, args["dest"], content, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _find_template(self, src):
        try:
            return self._find_needle("templates", src)
        except AnsibleError as e:
            raise AnsibleActionFail(to_text(e)) from None

    def _render(self, source, src, dest, task_vars):
        """Render `source` with the search path and variables ansible.builtin.template gives it."""
        template_data = trust_as_template(self._loader.get_text_file_contents(source))

        searchpath = [*task_vars.get("ansible_search_path", []), self._loader.get_basedir(), os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]

        template_vars = dict(task_vars)
        generated = generate_ansible_template_vars(path=src, fullpath=source, dest_path=dest)
        # Like template: a user-set ansible_managed wins over the generated one.
        if "ansible_managed" in task_vars:
            generated.pop("ansible_managed", None)
        template_vars.update(generated)

        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=template_vars)
        rendered = templar.template(template_data, escape_backslashes=False, overrides=TEMPLATE_OVERRIDES)
        return "" if rendered is None else str(rendered)

    def _copy(self, source, dest, content, task_vars):
        """Hand `content` to ansible.builtin.copy, which does check mode, diff, file attributes and backup."""
        copy_args = {name: value for name, value in self._task.args.items() if name in COPY_OPTIONS}
        if copy_args.get("mode") == "preserve":
            # The rendered temp file has no meaningful mode; like template, preserve the template's.
            copy_args["mode"] = f"0{stat.S_IMODE(os.stat(source).st_mode):03o}"

        local_tempdir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            rendered_file = os.path.join(local_tempdir, os.path.basename(dest.rstrip("/")) or "config")
            with open(to_bytes(rendered_file, errors="surrogate_or_strict"), "wb") as f:
                f.write(to_bytes(content, errors="surrogate_or_strict"))

            copy_task = self._task.copy()
            copy_task.args = {**copy_args, "src": rendered_file, "dest": dest}
            # ansible.legacy lets a local copy override win, as it does for template.
            copy_action = self._shared_loader_obj.action_loader.get(
                "ansible.legacy.copy",
                task=copy_task,
                connection=self._connection,
                play_context=self._play_context,
                loader=self._loader,
                templar=self._templar,
                shared_loader_obj=self._shared_loader_obj,
            )
            return copy_action.run(task_vars=task_vars)
        finally:
            shutil.rmtree(to_bytes(local_tempdir, errors="surrogate_or_strict"))

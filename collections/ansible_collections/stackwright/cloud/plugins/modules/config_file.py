# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the action plugin plugins/action/config_file.py does the work on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_file
short_description: Render a config file template and merge overrides into it
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Renders O(src) exactly like M(ansible.builtin.template) (same search path, including a role's C(templates/)
    directory, same variables, C(ansible_managed) and the other C(template_*) variables), parses the result as
    INI, YAML or JSON, merges O(overrides) into it and writes it to O(dest) with M(ansible.builtin.copy).
  - Check mode, diff mode, O(backup), O(validate) and the file attributes behave as they do for
    M(ansible.builtin.copy); the task is C(changed) only when the written file differs from the one on the host.
  - The output depends only on the rendered template and O(overrides), so a second run reports no change.
options:
  src:
    description:
      - The Jinja2 template, looked up like the O(ansible.builtin.template#module:src) of M(ansible.builtin.template).
    type: str
    required: true
  dest:
    description:
      - Path of the file on the managed host.
    type: str
    required: true
  type:
    description:
      - How to parse the rendered template and merge O(overrides) into it.
      - When not set, guessed from the suffix of O(dest) (C(.conf), C(.ini) and C(.cfg) are V(ini); C(.yml) and
        C(.yaml) are V(yaml); C(.json) is V(json)). Any other suffix needs O(type).
      - V(ini) reads the dialect of oslo.config. Sections stay in the order the template has them and
        C([DEFAULT]) is an ordinary section (nothing is copied from it into other sections). Keys are
        case-sensitive. A key repeated in a section is one multi-valued option. An indented line continues the
        value above it. Comments and blank lines are kept, trailing whitespace is dropped, a section that appears
        twice is folded into its first occurrence.
      - V(yaml) is written with an explicit C(---) start, block style and keys in their merged order.
      - V(json) is written with an indent of 2, keys in their merged order and a trailing newline.
    type: str
    choices: [ini, yaml, json]
  overrides:
    description:
      - Merged into the parsed template before it is written.
      - For V(ini), a mapping of section name to a mapping of option to value. A scalar sets the option once, in
        place of the first existing occurrence, removing the others. A list writes the option once per item (a
        multi-valued option). V(null) or an empty list removes the option. Booleans are written as V(true) and
        V(false), numbers as they print. A section that does not exist yet is appended. Values must be single-line.
      - For V(yaml) and V(json), a mapping merged recursively. A mapping merges into a mapping key by key,
        V(null) removes the key, any other value (lists too) replaces the old one. New keys come last.
      - V(null) or an empty mapping writes the rendered template as parsed and serialized.
    type: dict
  backup:
    description:
      - Keep a timestamped copy of O(dest) on the host before replacing it.
    type: bool
    default: false
  validate:
    description:
      - Command that checks the new file before it replaces O(dest); C(%s) stands for the path of the new file.
    type: str
  force:
    description:
      - When V(false), O(dest) is only written if it does not exist yet.
    type: bool
    default: true
  follow:
    description:
      - When O(dest) is a symbolic link, write the file it points to.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.files
  - ansible.builtin.files
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
  safe_file_operations:
    description: Writes through M(ansible.builtin.copy), which moves a finished temporary file into place.
    support: full
  vault:
    description: A vaulted template file is decrypted, as M(ansible.builtin.template) decrypts its source.
    support: full
notes:
  - The C(mode) V(preserve) takes the mode of the template file, like M(ansible.builtin.template).
  - The template options of M(ansible.builtin.template) that change Jinja2 delimiters or whitespace handling are
    not offered; the template is rendered with the defaults of M(ansible.builtin.template).
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write keystone.conf with the deployment's overrides
  stackwright.cloud.config_file:
    src: keystone.conf.j2
    dest: /etc/keystone/keystone.conf
    overrides: "{{ keystone_keystone_conf_overrides }}"
    owner: root
    group: keystone
    mode: "0640"

- name: Set, repeat and remove oslo.config options
  stackwright.cloud.config_file:
    src: nova.conf.j2
    dest: /etc/nova/nova.conf
    overrides:
      DEFAULT:
        debug: true
        # Removed from the rendered template.
        log_dir: null
      pci:
        # A multi-valued option: written once per item.
        device_spec:
          - '{"vendor_id": "8086", "product_id": "1520"}'
          - '{"vendor_id": "8086", "product_id": "1521"}'
    owner: root
    group: nova
    mode: "0640"

- name: Merge into a YAML policy file whose suffix says nothing about its format
  stackwright.cloud.config_file:
    src: policy.j2
    dest: /etc/glance/policy.d/50-stackwright
    type: yaml
    overrides:
      "get_image": "role:reader"
    mode: "0644"
"""

RETURN = r"""
dest:
  description: Path of the file on the host.
  returned: success
  type: str
  sample: /etc/keystone/keystone.conf
checksum:
  description: SHA1 checksum of the written content.
  returned: success
  type: str
  sample: 6e642bb8dd5c2e027bf21dd923337cbb4214f827
backup_file:
  description: Path of the backup made of the previous file.
  returned: changed and O(backup) is V(true)
  type: str
  sample: /etc/keystone/keystone.conf.2187.2026-05-09@12:00:00~
mode:
  description: Permissions of the file after the task.
  returned: success
  type: str
  sample: "0640"
owner:
  description: Owner of the file after the task.
  returned: success
  type: str
  sample: root
group:
  description: Group of the file after the task.
  returned: success
  type: str
  sample: keystone
"""

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)


class ModuleDocFragment:
    # What the modules that call the cloud's APIs through openstacksdk share; each module adds its own details (what
    # check mode does, which admin policy it needs) to these entries.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Runs where openstacksdk is installed, usually the deploy host (C(delegate_to) or a play on localhost).
"""

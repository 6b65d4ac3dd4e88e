# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)


class ModuleDocFragment:
    # How db_backup and db_restore log in to MariaDB (module_utils/db_backup.py, MariaDBClient).
    DOCUMENTATION = r"""
options:
  login_user:
    description:
      - The MariaDB user to log in as.
      - >-
        When neither this nor O(config_file) names one, the clients log in as the system user the module runs
        as. Run with C(become) as root: on Debian root logs in over the unix socket without a password
        (unix_socket authentication), which is how Stackwright sets it up.
    type: str
  login_password:
    description:
      - The password of O(login_user).
      - >-
        It goes into a private option file (mode 0600, removed when the task ends) that the clients read with
        C(--defaults-file), never onto a command line, where every local user could read it in the process list.
    type: str
  login_host:
    description:
      - Connect over TCP to this host instead of the unix socket.
    type: str
  login_port:
    description:
      - The TCP port, with O(login_host).
    type: int
    default: 3306
  login_unix_socket:
    description:
      - The server's unix socket, used when O(login_host) is not set.
    type: path
    default: /run/mysqld/mysqld.sock
  config_file:
    description:
      - An option file (for example C(/root/.my.cnf)) to read first; the login_* options override what it sets.
      - No other option file is read (no C(/etc/mysql/my.cnf)), so the clients behave the same on every host.
    type: path
"""

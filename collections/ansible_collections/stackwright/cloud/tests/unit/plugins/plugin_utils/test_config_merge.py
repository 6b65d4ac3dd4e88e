# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Parse, merge and serialize of stackwright.cloud.config_file (plugin_utils/config_merge.py)."""

import copy
import json
import re

import pytest
import yaml
from ansible_collections.stackwright.cloud.plugins.plugin_utils.config_merge import (
    ConfigMergeError,
    guess_format,
    merge_config,
    plain_data,
)

# [DEFAULT] deliberately not first, repeated keys, case-different keys, an empty value, a colon separator,
# a continuation line and comments everywhere: everything configparser would change.
KEYSTONE_CONF = """\
# Ansible managed
; semicolon comment

[database]
connection = mysql+pymysql://keystone:secret@db/keystone
  ?charset=utf8
max_retries=-1

[DEFAULT]
# logging
debug = false
Debug = kept-apart
log_dir =
transport_url: rabbit://openstack:secret@mq:5672/
transport_url = rabbit://openstack:secret@mq2:5672/

[oslo_policy]
enforce_scope = true
"""


def ini(overrides, text=KEYSTONE_CONF):
    return merge_config(text, "ini", overrides)


def section(text, name):
    """The lines of section `name` in INI `text`, without the header and blank lines."""
    lines, current = [], None
    for line in text.splitlines():
        if line.startswith("["):
            current = line[1:-1]
        elif current == name and line:
            lines.append(line)
    return lines


# --- INI: what stays as rendered --------------------------------------------------------------------------------


def test_ini_without_overrides_keeps_the_rendered_text():
    assert ini({}) == KEYSTONE_CONF
    assert ini(None) == KEYSTONE_CONF


def test_ini_output_is_stable_and_a_fixed_point():
    overrides = {"DEFAULT": {"debug": True, "transport_url": ["rabbit://a", "rabbit://b"]}, "new": {"x": 1}}
    first = ini(overrides)
    assert ini(overrides) == first
    # Merging the same overrides into the result changes nothing, so a re-run writes the same bytes.
    assert ini(overrides, first) == first


def test_ini_normalizes_trailing_whitespace_and_final_newline():
    assert ini({}, "[a]  \nk = v   \n\n\n") == "[a]\nk = v\n"
    assert ini({}, "[a]\nk = v") == "[a]\nk = v\n"
    assert ini({}, "[a]\r\nk = v\r\n") == "[a]\nk = v\n"


def test_ini_empty_template_and_overrides_give_empty_file():
    assert ini({}, "") == ""


def test_ini_default_is_not_propagated_into_other_sections():
    result = ini({"DEFAULT": {"debug": True}})
    assert section(result, "oslo_policy") == ["enforce_scope = true"]
    assert section(result, "database")[0].startswith("connection = ")
    # [DEFAULT] stays where the template put it, after [database].
    headers = [line for line in result.splitlines() if line.startswith("[")]
    assert headers == ["[database]", "[DEFAULT]", "[oslo_policy]"]


# --- INI: overrides ---------------------------------------------------------------------------------------------


def test_ini_scalar_replaces_in_place_and_keeps_case_sensitive_neighbours():
    result = ini({"DEFAULT": {"debug": True}})
    assert section(result, "DEFAULT") == [
        "# logging",
        "debug = true",
        "Debug = kept-apart",
        "log_dir =",
        "transport_url: rabbit://openstack:secret@mq:5672/",
        "transport_url = rabbit://openstack:secret@mq2:5672/",
    ]


def test_ini_scalar_collapses_a_multi_valued_option_at_its_first_position():
    result = ini({"DEFAULT": {"transport_url": "rabbit://only:5672/"}})
    assert section(result, "DEFAULT")[-1] == "transport_url = rabbit://only:5672/"
    assert sum(line.startswith("transport_url") for line in result.splitlines()) == 1
    assert section(result, "DEFAULT").index("transport_url = rabbit://only:5672/") == 4


def test_ini_list_writes_the_option_once_per_item():
    result = ini({"oslo_policy": {"policy_dirs": ["policy.d", "extra.d"]}, "DEFAULT": {"debug": [True, False]}})
    assert section(result, "oslo_policy") == [
        "enforce_scope = true",
        "policy_dirs = policy.d",
        "policy_dirs = extra.d",
    ]
    assert section(result, "DEFAULT")[1:3] == ["debug = true", "debug = false"]


def test_ini_null_and_empty_list_remove_every_occurrence():
    result = ini({"DEFAULT": {"transport_url": None, "log_dir": []}, "database": {"connection": None}})
    assert "transport_url" not in result
    assert "log_dir" not in result
    # The continuation line belongs to the removed option and goes with it.
    assert section(result, "database") == ["max_retries=-1"]


def test_ini_removing_from_a_missing_section_adds_nothing():
    assert ini({"cache": {"enabled": None, "backend": []}}) == KEYSTONE_CONF


def test_ini_new_option_goes_after_the_last_line_of_its_section():
    result = ini({"database": {"pool_size": 5}})
    assert "max_retries=-1\npool_size = 5\n\n[DEFAULT]" in result


def test_ini_new_section_is_appended_after_a_blank_line():
    result = ini({"cache": {"enabled": True, "backend": "dogpile.cache.memcached", "expiration_time": 600.5}})
    assert result.endswith(
        "enforce_scope = true\n\n[cache]\nenabled = true\nbackend = dogpile.cache.memcached\nexpiration_time = 600.5\n"
    )


def test_ini_new_section_in_an_empty_document():
    assert ini({"DEFAULT": {"debug": False}}, "") == "[DEFAULT]\ndebug = false\n"
    assert ini({"DEFAULT": {"debug": False}}, "# only a comment\n") == "# only a comment\n\n[DEFAULT]\ndebug = false\n"


def test_ini_empty_string_value_and_stripped_value():
    result = ini({"DEFAULT": {"log_dir": "", "debug": "  yes  "}})
    assert "log_dir =\n" in result
    assert "debug = yes\n" in result


def test_ini_repeated_section_is_folded_into_the_first():
    text = "[a]\nx = 1\n[b]\ny = 2\n[a]\nx = 3\n"
    assert ini({}, text) == "[a]\nx = 1\nx = 3\n[b]\ny = 2\n"
    assert ini({"a": {"x": "4"}}, text) == "[a]\nx = 4\n[b]\ny = 2\n"


def test_ini_does_not_change_the_overrides():
    overrides = {"DEFAULT": {"debug": [True]}, "new": {"a": None}}
    before = copy.deepcopy(overrides)
    ini(overrides)
    assert overrides == before


# --- INI: errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a]\nk = v\njust words\n", "line 3: expected 'key = value'"),
        ("k = v\n[a]\n", "line 1: option 'k' comes before any [section]"),
        ("[a\nk = v\n", "line 1: '[a' is not a valid [section] header"),
        ("# c\n[ ]\n", "line 2: '[ ]' is not a valid [section] header"),
        ("[a]\n\n  indented = v\n", "line 3: indented line 'indented = v' continues no option"),
        ("[a]\n= v\n", "line 2: expected 'key = value'"),
    ],
)
def test_ini_unreadable_line_is_named(text, message):
    with pytest.raises(ConfigMergeError, match=re.escape(message)):
        ini({}, text)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEFAULT": ["debug"]}, "overrides['DEFAULT'] must be a mapping of option to value, got list"),
        ({"DEFAULT": {"debug": True}, "database": "x"}, "overrides['database'] must be a mapping"),
        ({"DEFAULT": {"x": {"nested": 1}}}, "overrides['DEFAULT']['x']: a value must be a string"),
        ({"DEFAULT": {"x": [["nested"]]}}, "overrides['DEFAULT']['x']: a value must be a string"),
        ({"DEFAULT": {"x": "two\nlines"}}, "overrides['DEFAULT']['x']: a value must be a single line"),
        ({"DEFAULT": {"a = b": 1}}, "'a = b' is not a valid INI option name"),
        ({"DEFAULT": {"#x": 1}}, "'#x' is not a valid INI option name"),
        ({"DEFAULT": {1: 1}}, "1 is not a valid INI option name"),
        ({"bad]name": {"x": 1}}, "'bad]name' is not a valid INI section name"),
        ({" DEFAULT": {"x": 1}}, "' DEFAULT' is not a valid INI section name"),
    ],
)
def test_ini_bad_overrides_are_rejected_naming_the_place(overrides, message):
    with pytest.raises(ConfigMergeError) as excinfo:
        ini(overrides)
    assert message in str(excinfo.value)


def test_overrides_must_be_a_mapping():
    with pytest.raises(ConfigMergeError, match="overrides must be a mapping, got list"):
        ini([{"DEFAULT": {}}])


# --- YAML ------------------------------------------------------------------------------------------------------

CLOUDS_YAML = """\
# rendered
clouds:
  admin:
    auth:
      auth_url: http://keystone:5000/v3
      username: admin
    region_name: RegionOne
    interface: internal
  demo: {auth: {username: demo}}
zeta: [1, 2]
alpha: 1
"""


def yml(overrides, text=CLOUDS_YAML):
    return merge_config(text, "yaml", overrides)


def test_yaml_without_overrides_keeps_order_and_writes_block_style():
    result = yml({})
    assert result.startswith("---\n")
    assert yaml.safe_load(result) == yaml.safe_load(CLOUDS_YAML)
    assert list(yaml.safe_load(result)) == ["clouds", "zeta", "alpha"]
    assert "{" not in result
    assert "[" not in result


def test_yaml_deep_merge():
    result = yaml.safe_load(
        yml(
            {
                "clouds": {
                    "admin": {"auth": {"password": "s3cret", "username": None}, "interface": "public"},
                    "demo": "replaced",
                },
                "zeta": [3],
                "alpha": None,
                "new": {"key": "value", "dropped": None},
            }
        )
    )
    assert result == {
        "clouds": {
            "admin": {
                "auth": {"auth_url": "http://keystone:5000/v3", "password": "s3cret"},
                "region_name": "RegionOne",
                "interface": "public",
            },
            "demo": "replaced",
        },
        "zeta": [3],
        "new": {"key": "value"},
    }
    assert list(result) == ["clouds", "zeta", "new"]
    assert list(result["clouds"]["admin"]) == ["auth", "region_name", "interface"]


def test_yaml_mapping_replaces_a_scalar_and_a_scalar_replaces_a_mapping():
    result = yaml.safe_load(yml({"alpha": {"a": 1}, "clouds": 0}))
    assert result == {"clouds": 0, "zeta": [1, 2], "alpha": {"a": 1}}


def test_yaml_is_stable_and_a_fixed_point():
    overrides = {"clouds": {"admin": {"verify": False}}, "extra": ["é", 1.5, None]}
    first = yml(overrides)
    assert yml(overrides) == first
    assert yml(overrides, first) == first
    assert "é" in first


def test_yaml_empty_document():
    assert yml({}, "") == "--- {}\n"
    assert yml({"a": {"b": True}}, "# nothing\n") == "---\na:\n  b: true\n"


def test_yaml_error_names_the_line():
    with pytest.raises(ConfigMergeError, match=r"not valid YAML: line 4:"):
        yml({}, "a: 1\nb:\n  - x\n  y: 2\n")


def test_yaml_top_level_must_be_a_mapping():
    with pytest.raises(ConfigMergeError, match="must be a mapping at the top level, got list"):
        yml({}, "- a\n- b\n")


def test_yaml_writes_values_from_ansible_variables():
    # Ansible hands over str and dict subclasses (tagged or unsafe values), which yaml.safe_dump refuses.
    class TaggedStr(str):
        pass

    class TaggedDict(dict):
        pass

    overrides = TaggedDict({TaggedStr("clouds"): TaggedDict({TaggedStr("x"): [TaggedStr("y")]})})
    assert yaml.safe_load(yml(overrides))["clouds"]["x"] == ["y"]
    plain = plain_data(overrides)
    # Exact types: a subclass is what plain_data must remove.
    assert type(plain) is dict  # pylint: disable=unidiomatic-typecheck
    assert type(next(iter(plain))) is str  # pylint: disable=unidiomatic-typecheck
    assert type(plain["clouds"]["x"][0]) is str  # pylint: disable=unidiomatic-typecheck


# --- JSON ------------------------------------------------------------------------------------------------------

POLICY_JSON = '{"b": {"y": 1, "x": [1, 2]}, "a": "text"}'


def test_json_format_and_merge():
    result = merge_config(POLICY_JSON, "json", {"b": {"x": ["only"], "y": None, "z": True}, "c": "é"})
    assert result == (
        '{\n  "b": {\n    "x": [\n      "only"\n    ],\n    "z": true\n  },\n  "a": "text",\n  "c": "é"\n}\n'
    )


def test_json_without_overrides_keeps_content_and_is_stable():
    first = merge_config(POLICY_JSON, "json", {})
    assert json.loads(first) == json.loads(POLICY_JSON)
    assert list(json.loads(first)) == ["b", "a"]
    assert first.endswith("}\n")
    assert merge_config(first, "json", {}) == first


def test_json_empty_document():
    assert merge_config("  \n", "json", {"a": 1}) == '{\n  "a": 1\n}\n'


def test_json_error_names_the_line():
    with pytest.raises(ConfigMergeError, match=r"not valid JSON: line 3: "):
        merge_config('{\n  "a": 1,\n  oops\n}', "json", {})


def test_json_top_level_must_be_a_mapping():
    with pytest.raises(ConfigMergeError, match="JSON must be a mapping at the top level, got list"):
        merge_config("[1]", "json", {})


# --- format ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "fmt"),
    [
        ("/etc/keystone/keystone.conf", "ini"),
        ("/etc/x/api-paste.INI", "ini"),
        ("/etc/x/setup.cfg", "ini"),
        ("/etc/openstack/clouds.yaml", "yaml"),
        ("/etc/x/policy.yml", "yaml"),
        ("/etc/x/policy.json", "json"),
    ],
)
def test_guess_format(dest, fmt):
    assert guess_format(dest) == fmt


@pytest.mark.parametrize("dest", ["/etc/default/nova", "/etc/x/policy.yaml.j2", "/etc/x.d/"])
def test_guess_format_refuses_unknown_suffix(dest):
    with pytest.raises(ConfigMergeError, match="set type to one of ini, yaml, json"):
        guess_format(dest)


def test_unknown_type():
    with pytest.raises(ConfigMergeError, match="unknown type 'toml'"):
        merge_config("a = 1\n", "toml", {})

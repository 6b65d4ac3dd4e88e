# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Parse a rendered config file (INI, YAML or JSON), merge overrides into it and serialize it again.

Pure Python plus PyYAML so the config_file action plugin and the tests share it. The INI dialect is the one
oslo.config reads: sections in file order, [DEFAULT] as an ordinary section, case-sensitive keys, a key repeated
in a section is one multi-valued option, indented lines continue the previous value, comments start a line.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

FORMATS = ("ini", "yaml", "json")
_SUFFIX_FORMATS = {
    ".conf": "ini",
    ".ini": "ini",
    ".cfg": "ini",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".json": "json",
}


class ConfigMergeError(ValueError):
    """The rendered content or the overrides cannot be used; the message says what to fix."""


def guess_format(dest):
    """The format of `dest` from its suffix, or ConfigMergeError if the suffix says nothing."""
    suffix = PurePosixPath(str(dest)).suffix.lower()
    try:
        return _SUFFIX_FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(_SUFFIX_FORMATS))
        raise ConfigMergeError(
            f"cannot tell the format of {dest!r} from its suffix (known: {known}); set type to one of "
            f"{', '.join(FORMATS)}"
        ) from None


def merge_config(text, fmt, overrides):
    """Parse `text` as `fmt`, merge `overrides` into it and return the serialized result."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ConfigMergeError(f"overrides must be a mapping, got {type(overrides).__name__}")
    overrides = plain_data(overrides)
    if fmt == "ini":
        document = parse_ini(text)
        merge_ini(document, overrides)
        return dump_ini(document)
    if fmt == "yaml":
        return dump_yaml(deep_merge(_top_mapping(parse_yaml(text), "YAML"), overrides))
    if fmt == "json":
        return dump_json(deep_merge(_top_mapping(parse_json(text), "JSON"), overrides))
    raise ConfigMergeError(f"unknown type {fmt!r}; use one of {', '.join(FORMATS)}")


def plain_data(value):
    """`value` as plain dicts, lists, str, int, float, bool and None.

    Values that come from Ansible variables are subclasses of these (tagged or unsafe); YAML's safe dumper
    refuses subclasses, and plain values compare and serialize the same on every run.
    """
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    # Dates and the like: YAML can hold them and the INI formatter rejects them with a clear message.
    return value


# --- YAML and JSON -------------------------------------------------------------------------------------------


def deep_merge(base, overrides):
    """A copy of `base` with `overrides` merged in.

    A mapping merges into a mapping key by key, None removes the key, anything else replaces the old value.
    Keys keep their place; new keys come last.
    """
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _without_nulls(value)
    return merged


def _without_nulls(value):
    # A new subtree has nothing to remove from, so its None values mean "absent" too, like in a merge.
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)


def _top_mapping(data, kind):
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigMergeError(f"the rendered {kind} must be a mapping at the top level, got {type(data).__name__}")
    return data


def parse_yaml(text):
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigMergeError(f"rendered content is not valid YAML: {where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigMergeError(f"rendered content is not valid YAML: {e}") from None


def dump_yaml(data):
    try:
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=False, explicit_start=True, allow_unicode=True)
    except yaml.representer.RepresenterError as e:
        raise ConfigMergeError(f"cannot write this value as YAML: {e.args[1]!r}") from None


def parse_json(text):
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigMergeError(f"rendered content is not valid JSON: line {e.lineno}: {e.msg}") from None


def dump_json(data):
    try:
        return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ConfigMergeError(f"cannot write this value as JSON: {e}") from None


# --- INI -----------------------------------------------------------------------------------------------------


@dataclass
class IniItem:
    """One option line (plus its continuation lines), or a comment or blank line when `key` is None."""

    key: str | None
    lines: list[str]


@dataclass
class IniSection:
    name: str
    header: str
    items: list[IniItem] = field(default_factory=list)


@dataclass
class IniDocument:
    # Comments and blank lines before the first section.
    preamble: list[str] = field(default_factory=list)
    sections: list[IniSection] = field(default_factory=list)

    def section(self, name):
        return next((s for s in self.sections if s.name == name), None)


def parse_ini(text):
    """Parse oslo.config-style INI text; ConfigMergeError names the line that cannot be read."""
    document = IniDocument()
    section = None
    option = None  # the last option item, which an indented line continues
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            option = None
            _append_other(document, section, line)
        elif line[0] in " \t":
            if option is None:
                raise ConfigMergeError(
                    f"line {number}: indented line {line.strip()!r} continues no option; "
                    "remove the indentation or put it right below a 'key = value' line"
                )
            option.lines.append(line)
        elif line.startswith(("#", ";")):
            option = None
            _append_other(document, section, line)
        elif line.startswith("["):
            option = None
            if not line.endswith("]") or not line[1:-1].strip():
                raise ConfigMergeError(f"line {number}: {line!r} is not a valid [section] header")
            name = line[1:-1].strip()
            # oslo.config reads a repeated section as one; folding it into the first keeps overrides simple.
            section = document.section(name)
            if section is None:
                section = IniSection(name=name, header=line)
                document.sections.append(section)
        else:
            key = _split_key(line)
            if key is None:
                raise ConfigMergeError(
                    f"line {number}: expected 'key = value', a [section] header or a comment, got {line!r}"
                )
            if section is None:
                raise ConfigMergeError(f"line {number}: option {key!r} comes before any [section] header")
            option = IniItem(key=key, lines=[line])
            section.items.append(option)
    return document


def _append_other(document, section, line):
    if section is None:
        document.preamble.append(line)
    else:
        section.items.append(IniItem(key=None, lines=[line]))


def _split_key(line):
    # Like oslo.config: the first '=' or ':' separates key and value.
    positions = [p for p in (line.find("="), line.find(":")) if p >= 0]
    if not positions:
        return None
    key = line[: min(positions)].strip()
    return key or None


def merge_ini(document, overrides):
    """Apply {section: {key: value}} overrides to `document` in place.

    A scalar sets the key once, where it first appeared; a list writes the key once per item; None or an empty
    list removes the key. Missing sections are appended.
    """
    for section_name, options in overrides.items():
        if not isinstance(section_name, str) or not _valid_section_name(section_name):
            raise ConfigMergeError(f"overrides: {section_name!r} is not a valid INI section name")
        if not isinstance(options, Mapping):
            raise ConfigMergeError(
                f"overrides[{section_name!r}] must be a mapping of option to value, got {type(options).__name__}"
            )
        section = document.section(section_name)
        for key, value in options.items():
            lines = _option_lines(section_name, key, value)
            if section is None:
                if not lines:
                    continue
                section = _new_section(document, section_name)
            _replace_option(section, key, lines)


def _valid_section_name(name):
    return bool(name.strip()) and name == name.strip() and not any(c in name for c in "[]\n\r")


def _option_lines(section_name, key, value):
    where = f"overrides[{section_name!r}][{key!r}]"
    if not isinstance(key, str) or not _valid_key(key):
        raise ConfigMergeError(f"{where}: {key!r} is not a valid INI option name")
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [_option_line(where, key, v) for v in values]


def _valid_key(key):
    return (
        bool(key) and key == key.strip() and not key.startswith(("[", "#", ";")) and not any(c in key for c in "=:\n\r")
    )


def _option_line(where, key, value):
    text = _ini_value(where, value)
    return f"{key} = {text}" if text else f"{key} ="


def _ini_value(where, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ConfigMergeError(f"{where}: a value must be a single line, got {value!r}")
        return value.strip()
    raise ConfigMergeError(
        f"{where}: a value must be a string, number, boolean, null or a list of those, got {type(value).__name__}"
    )


def _new_section(document, name):
    header = f"[{name}]"
    if document.sections:
        last = document.sections[-1]
        if not last.items or last.items[-1].key is not None or last.items[-1].lines[-1]:
            last.items.append(IniItem(key=None, lines=[""]))
    elif document.preamble and document.preamble[-1]:
        document.preamble.append("")
    section = IniSection(name=name, header=header)
    document.sections.append(section)
    return section


def _replace_option(section, key, lines):
    new_items = [IniItem(key=key, lines=[line]) for line in lines]
    positions = [i for i, item in enumerate(section.items) if item.key == key]
    if positions:
        first = positions[0]
        kept = [item for i, item in enumerate(section.items) if i not in positions[1:]]
        kept[first : first + 1] = new_items
        section.items = kept
        return
    # A new key goes after the section's last non-blank line, so blank lines still separate the sections.
    insert_at = len(section.items)
    while insert_at > 0 and section.items[insert_at - 1].key is None and not section.items[insert_at - 1].lines[0]:
        insert_at -= 1
    section.items[insert_at:insert_at] = new_items


def dump_ini(document):
    lines = list(document.preamble)
    for section in document.sections:
        lines.append(section.header)
        for item in section.items:
            lines.extend(item.lines)
    # One trailing newline whatever the template ends with, so the bytes only depend on the content.
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""

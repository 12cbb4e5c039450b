"""discovery-python-ranges: an Ember discovery plugin in Python.

Expands host patterns with numeric ranges, as inventory tools write them,
into scrape targets:

    web-[01:03].example.net:9100   ->  web-01.example.net:9100,
                                       web-02.example.net:9100,
                                       web-03.example.net:9100
    10.0.0.[1:9:4]:9100            ->  10.0.0.1:9100, 10.0.0.5:9100, 10.0.0.9:9100

A range is `[start:end]` or `[start:end:step]`, inclusive; a start written
with leading zeros pads every number to its width. A pattern may hold
several ranges (their product is expanded).

Configuration (the plugin's `config:` map):

    hosts   patterns separated by commas or blanks (required)
    labels  `name=value` pairs separated by commas, set on every target as
            `__meta_ranges_label_<name>` (optional)

Each pattern is one target group (source `ranges:<pattern>`); every target
carries `__meta_ranges_pattern` and `__meta_ranges_index` (its position in
the expansion). A pattern that expands to more than 10,000 hosts is refused
at load: that is a typo, not an inventory.
"""

import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import logging, store
from wit_world.imports.types import (
    Label,
    PluginError_InvalidConfig,
    TargetGroup,
)

MAX_HOSTS_PER_PATTERN = 10_000
RANGE = re.compile(r"\[(\d+):(\d+)(?::(\d+))?\]")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def invalid(message):
    return Err(PluginError_InvalidConfig(message))


def expand(pattern):
    """Every host the pattern names, in order."""
    match = RANGE.search(pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise invalid(f"{pattern!r}: a range is [start:end] or [start:end:step]")
        return [pattern]
    start_text, end_text, step_text = match.groups()
    start, end = int(start_text), int(end_text)
    step = int(step_text) if step_text else 1
    if step < 1 or end < start:
        raise invalid(f"{pattern!r}: a range needs start <= end and a step of at least 1")
    width = len(start_text) if start_text.startswith("0") and len(start_text) > 1 else 0
    count = (end - start) // step + 1
    if count > MAX_HOSTS_PER_PATTERN:
        raise invalid(f"{pattern!r} expands to {count} hosts; at most {MAX_HOSTS_PER_PATTERN}")
    head, tail = pattern[: match.start()], pattern[match.end():]
    rest = expand(tail)
    if count * len(rest) > MAX_HOSTS_PER_PATTERN:
        raise invalid(f"{pattern!r} expands to more than {MAX_HOSTS_PER_PATTERN} hosts")
    return [
        f"{head}{str(n).zfill(width)}{suffix}"
        for n in range(start, end + 1, step)
        for suffix in rest
    ]


def parse_labels(raw):
    labels = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not LABEL_NAME.match(name):
            raise invalid(f"labels: {item!r} is not name=value with a valid label name")
        labels.append(Label(f"__meta_ranges_label_{name}", value.strip()))
    return labels


class WitWorld(wit_world.WitWorld):
    groups = []

    def init(self) -> None:
        hosts = store.get("hosts")
        if not hosts or not hosts.strip():
            raise invalid("missing required key \"hosts\"")
        common = parse_labels(store.get("labels") or "")
        groups = []
        for pattern in hosts.replace(",", " ").split():
            targets = [
                [
                    Label("__address__", host),
                    Label("__meta_ranges_index", str(index)),
                ]
                for index, host in enumerate(expand(pattern))
            ]
            labels = [Label("__meta_ranges_pattern", pattern)] + common
            groups.append(TargetGroup(f"ranges:{pattern}", targets, labels))
        # The answer never changes for an instance (a new configuration makes
        # a new instance), so it is built once, here.
        WitWorld.groups = groups
        total = sum(len(g.targets) for g in groups)
        logging.log(logging.Level.INFO, "ranges", f"{len(groups)} patterns, {total} targets")

    def refresh(self):
        return WitWorld.groups

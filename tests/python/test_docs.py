"""docs/architecture.md's parameter table (section 2.1) against the
configuration schema in sim/config.h: the same parameters, and for each the
type, unit, inf1 default and the value configs/inf2.yaml sets."""
import os
import re

import pytest
import yaml

from infsim import _infsim

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "architecture.md")
HEADING = "### 2.1 Every parameter"
COLUMNS = ["parameter", "type", "inf1 default", "unit", "meaning", "source", "inf2.yaml"]
TYPES = {"std::string": "string", "uint32_t": "u32", "uint64_t": "u64", "double": "double"}
DASH = "—"


def cells(line):
    """The cells of one Markdown table row (`\\|` is not a separator)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def parameter_table():
    """Rows of the first table after the section 2.1 heading: [cells, ...]."""
    with open(DOC, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert HEADING in lines, f"{DOC} has no '{HEADING}' section"
    i = lines.index(HEADING) + 1
    while i < len(lines) and not lines[i].startswith("|"):
        assert not lines[i].startswith("#"), f"no table under '{HEADING}'"
        i += 1
    header = cells(lines[i])
    assert header == COLUMNS, f"parameter table columns {header}, expected {COLUMNS}"
    rows = []
    for line in lines[i + 2:]:  # past the header and its |---| separator
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def first_token(cell):
    return cell.split()[0].strip("`") if cell.split() else ""


def documented():
    rows = parameter_table()
    names = []
    for r in rows:
        m = re.fullmatch(r"`(\w+)`", r[0])
        assert m, f"parameter cell {r[0]!r} is not one `name`"
        names.append(m.group(1))
    return names, {n: dict(zip(COLUMNS, r)) for n, r in zip(names, rows)}


def test_table_lists_exactly_the_schema_parameters():
    names, _ = documented()
    schema = [p["name"] for p in _infsim.param_schema()]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    missing = [n for n in schema if n not in names]
    unknown = [n for n in names if n not in schema]
    assert not duplicated, f"docs/architecture.md 2.1 lists these parameters twice: {duplicated}"
    assert not missing, f"schema parameters missing from docs/architecture.md 2.1: {missing}"
    assert not unknown, f"docs/architecture.md 2.1 lists parameters the schema does not have: {unknown}"
    assert names == schema, "docs/architecture.md 2.1 lists the parameters in another order than sim/config.h"


@pytest.mark.parametrize("param", _infsim.param_schema(), ids=lambda p: p["name"])
def test_type_unit_and_inf1_default(param):
    _, rows = documented()
    row = rows.get(param["name"])
    if row is None:
        pytest.fail(f"{param['name']} is not in the table")
    assert row["type"] == TYPES[param["type"]], f"{param['name']}: type"
    assert row["unit"] == (param["unit"] or DASH), f"{param['name']}: unit"
    assert first_token(row["inf1 default"]) == param["default"], f"{param['name']}: inf1 default"


def test_inf2_column_matches_configs_inf2_yaml():
    _, rows = documented()
    with open(os.path.join(ROOT, "configs", "inf2.yaml"), encoding="utf-8") as f:
        overrides = yaml.safe_load(f)
    values = _infsim.config("inf2")
    for name, row in rows.items():
        cell = row["inf2.yaml"]
        if name in overrides:
            assert first_token(cell) == values[name], f"{name}: inf2.yaml sets {values[name]}, the table says {cell!r}"
        else:
            assert cell.startswith(DASH), f"{name}: inf2.yaml does not set it, the table says {cell!r}"


def test_runtime_doc_lists_every_instance_parameter():
    """docs/runtime.md section 1's table: the instance schema's parameters, in order, with their defaults."""
    text = open(os.path.join(ROOT, "docs", "runtime.md")).read()
    rows = re.findall(r"^\| `(\w+)` \| ([\w:]+) \| ([^|]*) \|", text, re.M)
    schema = _infsim.instance_param_schema()
    assert [r[0] for r in rows] == [p["name"] for p in schema]
    for (name, typ, default), p in zip(rows, schema):
        assert typ == p["type"].replace("std::", ""), name
        assert default.strip() == p["default"], name

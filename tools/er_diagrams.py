"""Draw the schema page's ER diagrams from the models: ``python -m tools.er_diagrams``.

The diagrams sit between :data:`BEGIN` and :data:`END` in docs/schema.md, one section per area
of ``vidpipe/db/models/``: what each table is for (the first line of its model's docstring),
then a mermaid block; a relationship between areas is drawn in the area of the table that holds
the foreign key. ``--check`` changes nothing and exits 1, naming each table, column,
relationship or description that differs, when the page is not what the models draw
(``tests/docs/test_schema_docs.py`` runs the same check).
"""

import argparse
import re
import sys
from pathlib import Path

import sqlalchemy as sa

from vidpipe.db.models import Base

#: The page the diagrams live on, and how errors name it.
PAGE_NAME = "docs/schema.md"
PAGE = Path(__file__).resolve().parent.parent / PAGE_NAME
COMMAND = "python -m tools.er_diagrams"
BEGIN = f"<!-- ER diagrams: generated from the models by `{COMMAND}`; do not edit by hand -->"
END = "<!-- end of the generated ER diagrams -->"
#: Each area's heading and the modules of vidpipe.db.models it draws.
AREAS: dict[str, tuple[str, ...]] = {
    "Manifests and assets": ("manifests",),
    "Projects and scenes": ("projects", "scenes"),
    "Users": ("users",),
}

#: What a diagram says about one table: column -> (type, key marks), in drawing order.
Drawn = dict[str, tuple[str, tuple[str, ...]]]


def _area_of_tables() -> dict[str, str]:
    modules = {
        mapper.local_table.name: mapper.class_.__module__.rsplit(".", 1)[-1]
        for mapper in Base.registry.mappers
        if isinstance(mapper.local_table, sa.Table)
    }
    areas = {module: area for area, area_modules in AREAS.items() for module in area_modules}
    missing = sorted({m for m in modules.values() if m not in areas})
    if missing:
        raise SystemExit(
            f"vidpipe/db/models/{missing[0]}.py is in no area of tools/er_diagrams.py: add it "
            "to AREAS (an existing area, or a new one with its heading)"
        )
    return {table: areas[module] for table, module in modules.items()}


def _columns(table: sa.Table) -> Drawn:
    return {
        column.name: (
            type(column.type).__name__.lower(),
            tuple(
                mark
                for mark, present in (("PK", column.primary_key), ("FK", bool(column.foreign_keys)))
                if present
            ),
        )
        for column in table.columns
    }


def _relationships(table: sa.Table) -> list[str]:
    return [
        f'{fk.column.table.name} ||--o{{ {table.name} : "{fk.parent.name}"'
        for fk in table.foreign_keys
    ]


def _descriptions() -> dict[str, str]:
    """What each table is for: the first line of its model's docstring."""
    described = {}
    for mapper in Base.registry.mappers:
        if isinstance(mapper.local_table, sa.Table):
            doc = (mapper.class_.__doc__ or "").strip()
            if not doc:
                raise SystemExit(
                    f"{mapper.class_.__module__}.{mapper.class_.__name__} has no docstring: its "
                    "first line says on the schema page what the table is for"
                )
            described[mapper.local_table.name] = " ".join(doc.split("\n\n", 1)[0].split())
    return described


def diagrams() -> str:
    """The generated section: per area a heading, what each table is for, a mermaid block."""
    area_of = _area_of_tables()
    described = _descriptions()
    parts = [BEGIN]
    for area in AREAS:
        tables = [t for t in Base.metadata.tables.values() if area_of[t.name] == area]
        lines = ["```mermaid", "erDiagram"]
        for table in tables:
            lines.append(f"    {table.name} {{")
            for column, (type_name, marks) in _columns(table).items():
                lines.append(
                    f"        {type_name} {column}" + (f" {', '.join(marks)}" if marks else "")
                )
            lines.append("    }")
        lines += [f"    {r}" for r in sorted(r for t in tables for r in _relationships(t))]
        lines.append("```")
        about = [f"- `{t.name}`: {described[t.name]}" for t in tables]
        parts += ["", f"## {area}", "", *about, "", *lines]
    return "\n".join([*parts, "", END])


def section(page: str) -> str:
    """The generated section as it stands in ``page``."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{PAGE_NAME} has no ER diagram section between {BEGIN!r} and {END!r}")
    return page[start : end + len(END)]


def parse(text: str) -> tuple[dict[str, Drawn], set[str], dict[str, str]]:
    """Tables (column -> type and marks), relationship lines and table descriptions drawn in
    ``text``."""
    tables: dict[str, Drawn] = {}
    for name, body in re.findall(r"^ {4}(\w+) \{\n(.*?)^ {4}\}", text, flags=re.S | re.M):
        if name in tables:
            raise SystemExit(f"table {name} is drawn twice in {PAGE_NAME}'s ER diagrams")
        columns: Drawn = {}
        for line in body.strip().splitlines():
            type_name, column, *marks = line.split(maxsplit=2)
            columns[column] = (
                type_name,
                tuple(m.strip() for m in marks[0].split(",")) if marks else (),
            )
        tables[name] = columns
    relationships = set(re.findall(r"^ {4}(\w+ \|\|--o\{ \w+ : \"\w+\")$", text, flags=re.M))
    descriptions = dict(re.findall(r"^- `(\w+)`: (.*)$", text, flags=re.M))
    return tables, relationships, descriptions


def _spelled(drawn: tuple[str, tuple[str, ...]]) -> str:
    type_name, marks = drawn
    return " ".join([type_name, *marks])


def differences(page: str) -> list[str]:
    """One line per table, column, relationship or description that ``page`` (the schema
    page's text) draws differently from the models."""
    drawn, drawn_relationships, drawn_descriptions = parse(section(page))
    models = {table.name: _columns(table) for table in Base.metadata.tables.values()}
    found = []
    for table in sorted(models.keys() - drawn.keys()):
        found.append(f"table {table} is in the models but not in the diagrams")
    for table in sorted(drawn.keys() - models.keys()):
        found.append(f"table {table} is in the diagrams but not in the models")
    for table in sorted(models.keys() & drawn.keys()):
        model, picture = models[table], drawn[table]
        for column in model.keys() - picture.keys():
            found.append(f"column {table}.{column} is in the models but not in the diagrams")
        for column in picture.keys() - model.keys():
            found.append(f"column {table}.{column} is in the diagrams but not in the models")
        for column in model.keys() & picture.keys():
            if model[column] != picture[column]:
                found.append(
                    f"column {table}.{column} is drawn as {_spelled(picture[column])}, the "
                    f"models say {_spelled(model[column])}"
                )
    expected = {r for t in Base.metadata.tables.values() for r in _relationships(t)}
    for relationship in sorted(expected - drawn_relationships):
        found.append(f"relationship {relationship} is in the models but not in the diagrams")
    for relationship in sorted(drawn_relationships - expected):
        found.append(f"relationship {relationship} is in the diagrams but not in the models")
    for table, description in sorted(_descriptions().items()):
        if table in drawn and drawn_descriptions.get(table) != description:
            found.append(
                f"table {table} is described as {drawn_descriptions.get(table)!r}, its model's "
                f"docstring says {description!r}"
            )
    if not found and section(page) != diagrams():
        found.append("the diagrams hold the models' tables but not as drawn (order or layout)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    page = PAGE.read_text()
    if args.check:
        found = differences(page)
        for line in found:
            print(f"{PAGE_NAME}: {line}; run `{COMMAND}`", file=sys.stderr)
        return 1 if found else 0
    PAGE.write_text(page.replace(section(page), diagrams()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

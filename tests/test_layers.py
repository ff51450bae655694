"""The rooms of ``src/medtwin`` import downwards only, with no circles (DESIGN.md, "The house").

Every ``import medtwin.X`` and ``from medtwin.X import ...`` in the source, at module level or
inside a function (a deferred import is still a dependency), is read with :mod:`ast`. A room
may import a room of a lower layer, never one of its own layer or a higher one. The layers are
DESIGN.md's, made exact where it leaves the order open:

0. ``record``: facts, identity, codes, units, time, and the alert type monitors raise and the
   store keeps;
1. ``store`` and ``model``: where the record lives; the model contract and solver;
2. ``risk`` (scores, read from the record in the store) and ``physiology`` (models);
3. ``ingest`` and ``export`` (formats: a FHIR RiskAssessment is read with the risk results'
   mapping) and ``pharmacology`` (drug models, which use the risk inputs' readers);
4. ``monitor`` and ``twin``: they build on all of the above;
5. ``synth``: demo patients made with the models and written in the import formats;
6. the command line (``cli`` and its ``cli_*`` modules) and the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "medtwin"

LAYERS: dict[str, int] = {
    "record": 0,
    "store": 1,
    "model": 1,
    "risk": 2,
    "physiology": 2,
    "ingest": 3,
    "export": 3,
    "pharmacology": 3,
    "monitor": 4,
    "twin": 4,
    "synth": 5,
}
TOP = 6  # cli, cli_*, __init__


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _layer(room: str) -> int:
    return LAYERS.get(room, TOP)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported room)`` of every medtwin import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "medtwin":  # from medtwin import twin (not __version__)
                names = [f"medtwin.{a.name}" for a in node.names if not a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "medtwin" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_every_room_has_a_layer() -> None:
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(LAYERS), "a new room: give it its layer in LAYERS (and DESIGN.md)"


def test_rooms_import_downwards_only() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        room = _room(path)
        for line, other in _imports(path):
            if other == room or (room.startswith("cli") and other.startswith("cli")):
                continue
            if _layer(other) >= _layer(room):
                wrong.append(
                    f"{path.relative_to(SRC)}:{line}: {room} (layer {_layer(room)}) imports "
                    f"{other} (layer {_layer(other)})"
                )
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_deferred_upward_import(tmp_path: Path) -> None:
    """The reader finds an import inside a function, the kind that hid the circles this test
    was written after (the store importing the monitors, pharmacology the twin)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from medtwin.record import facts\n"
        "def f():\n"
        "    from medtwin.monitor.base import Alert\n"
        "    import medtwin.twin.twin\n"
        "    from medtwin import synth, __version__\n"
    )
    assert _imports(sample) == [(1, "record"), (3, "monitor"), (4, "twin"), (5, "synth")]

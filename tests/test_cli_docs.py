"""The CLI documentation is generated from the commands and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_cli_docs_are_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", REPO / "tools" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    actual = (REPO / "docs" / "cli.md").read_text()
    assert actual == expected, (
        "docs/cli.md is out of date: run .venv/bin/python tools/gen_cli_docs.py"
    )
    for command in (
        "import",
        "patients",
        "show",
        "timeline",
        "export",
        "quarantine",
        "link",
        "synth",
        "alerts",
    ):
        assert f"`medtwin {command}" in actual

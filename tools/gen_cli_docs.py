"""Write ``docs/cli.md`` from the ``medtwin`` command's own help texts.

``tests/test_cli_docs.py`` fails when the file is out of date, so the documentation
cannot drift from the command. Run: ``.venv/bin/python tools/gen_cli_docs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from medtwin.cli import main

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    ctx = click.Context(
        command, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100
    )
    text = command.get_help(ctx)
    lines = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```", text, "```", ""]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None:
                lines += _help(sub, [*path, name], ctx)
    return lines


def render() -> str:
    """The whole document."""
    header = [
        "# Command line",
        "",
        "Generated from the commands' help by `tools/gen_cli_docs.py`; a test checks it is current.",
        "Every read command takes `--json`. The store is `--store URL` or `MEDTWIN_STORE`.",
        "",
    ]
    return "\n".join(header + _help(main, ["medtwin"], None)).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")

"""Writes docs/cli.md from the click commands (`python scripts/cli_reference.py`).

tests/test_docs.py fails when the file and the commands disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pylive.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render() -> str:
    parts = [
        "# CLI reference\n",
        "Generated from the commands' own help by `python scripts/cli_reference.py`.\n",
    ]
    root = click.Context(cli, info_name="pylive", **cli.context_settings)
    _render(cli, root, "pylive", parts)
    return "\n".join(parts)


def _render(command: click.Command, context: click.Context, name: str, parts: list[str]) -> None:
    parts.append(f"## {name}\n\n```\n{command.get_help(context)}\n```\n")
    if isinstance(command, click.Group):
        for sub_name in sorted(command.list_commands(context)):
            sub = command.get_command(context, sub_name)
            assert sub is not None
            sub_context = click.Context(sub, info_name=sub_name, parent=context)
            _render(sub, sub_context, f"{name} {sub_name}", parts)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")

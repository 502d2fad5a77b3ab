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
    parts.append(f"## pylive\n\n```\n{cli.get_help(root)}\n```\n")
    for name in sorted(cli.list_commands(root)):
        command = cli.get_command(root, name)
        assert command is not None
        context = click.Context(command, info_name=name, parent=root)
        parts.append(f"## pylive {name}\n\n```\n{command.get_help(context)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")

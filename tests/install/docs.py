"""Reads docs/install.md as the install test runs it.

Every fenced code block in the page is preceded by an HTML comment (invisible
when the page is rendered) that says what a reader does with it:

- ``<!-- install-test: shell -->``: typed into the reader's terminal;
- ``<!-- install-test: append PATH -->``: added at the end of the file PATH;
- ``<!-- install-test: write PATH -->``: the whole content of the file PATH;
- ``<!-- install-test: processes -->``: one long-running process per line,
  each in a terminal of its own;
- ``<!-- install-test: check PATH (NAME=VALUE ...) -->``: an alternative
  settings block: added to a copy of PATH, then ``manage.py check`` must pass
  with those environment variables (``extra=NAME`` instead installs that
  extra of the package first, as the text around the block tells the reader);
- ``<!-- install-test: skip (reason) -->``: not run, for the reason given.

A block without a comment is an error, so nothing on the page goes untested
by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_MD = Path(__file__).resolve().parents[2] / "docs" / "install.md"
KINDS = {"shell", "append", "write", "processes", "check", "skip"}

_DIRECTIVE = re.compile(r"<!--\s*install-test:\s*(?P<kind>\w+)\s*(?P<rest>.*?)\s*-->")
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


@dataclass
class Block:
    """One fenced code block of the page and what the reader does with it."""

    kind: str
    text: str
    line: int
    path: str = ""
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)


def blocks(source: str | None = None) -> list[Block]:
    """The page's code blocks in order. Raises ValueError for a block without
    a directive, an unknown kind, or a directive not followed by a block."""
    lines = (source if source is not None else INSTALL_MD.read_text()).splitlines()
    found: list[Block] = []
    pending: tuple[re.Match, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.fullmatch(line.strip())
        if directive:
            if pending:
                raise ValueError(f"line {pending[1]}: directive not followed by a code block")
            pending = (directive, index + 1)
        elif _FENCE.match(line):
            end = index + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise ValueError(f"line {index + 1}: unclosed code block")
            if pending is None:
                raise ValueError(f"line {index + 1}: code block without an install-test directive")
            found.append(_block(pending[0], "\n".join(lines[index + 1 : end]) + "\n", index + 1))
            pending = None
            index = end
        elif pending and line.strip():
            raise ValueError(f"line {pending[1]}: directive not followed by a code block")
        index += 1
    if pending:
        raise ValueError(f"line {pending[1]}: directive not followed by a code block")
    return found


def _block(directive: re.Match, text: str, line: int) -> Block:
    kind, rest = directive["kind"], directive["rest"]
    if kind not in KINDS:
        raise ValueError(f"line {line}: unknown install-test kind {kind!r}")
    note = ""
    if "(" in rest:
        rest, _, note = rest.partition("(")
        note = note.rstrip(")").strip()
    block = Block(kind=kind, text=text, line=line, path=rest.strip(), note=note)
    if kind in ("append", "write", "check") and not block.path:
        raise ValueError(f"line {line}: {kind} needs a file path")
    if kind == "skip" and not note:
        raise ValueError(f"line {line}: skip needs a reason in parentheses")
    if kind == "check" and note:
        block.env = dict(pair.split("=", 1) for pair in note.split())
    return block

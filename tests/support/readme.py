"""The command lines the README shows, read the way a shell reads them.

Tests use this to hold the README to the code: every `batchcalls …` line
must parse with the real CLI parser, every grpcurl line must name a method
the proto declares with a request body that method accepts
(tests/integration/test_readme_commands.py), and the grpcurl walkthrough is
run as written against a live server (tests/integration/test_grpcurl.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,6}) (.+)$", re.MULTILINE)
_VAR = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class ShellCommand:
    """One command of a fenced shell block: its words after shell quoting."""

    words: tuple[str, ...]
    section: str  # the heading the block sits under
    line: int  # 1-based line of the README where the command starts

    def __str__(self) -> str:
        return f"README.md:{self.line}: {shlex.join(self.words)}"


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def shell_commands(text: str | None = None) -> list[ShellCommand]:
    """Every command of every ```sh / ```bash / ```shell block, in order.

    Backslash-newline continues a line, and a quoted string may span lines
    (the CreatePhoneNumber body does), exactly as in a POSIX shell.
    """
    text = readme_text() if text is None else text
    headings = [(m.start(), m.group(2).strip()) for m in _HEADING.finditer(text)]
    found: list[ShellCommand] = []
    for block in _FENCE.finditer(text):
        if block.group(1) not in ("sh", "bash", "shell", "console"):
            continue
        section = next((h for pos, h in reversed(headings) if pos < block.start()), "")
        first_line = text.count("\n", 0, block.start(2)) + 1
        found += _split_block(block.group(2), section, first_line)
    return found


def _split_block(body: str, section: str, first_line: int) -> list[ShellCommand]:
    commands: list[ShellCommand] = []
    pending = ""
    start = first_line
    for offset, line in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        pending += line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            pending += "\n"
            continue
        pending = ""
        if words:
            commands.append(ShellCommand(tuple(words), section, start))
    if pending.strip():
        raise ValueError(f"README.md:{start}: unterminated shell command: {pending!r}")
    return commands


def inline_code(text: str | None = None) -> list[str]:
    """Every `inline code` span of the README outside fenced blocks."""
    text = readme_text() if text is None else text
    return re.findall(r"`([^`\n]+)`", _FENCE.sub("", text))


def table_rows(text: str | None = None) -> list[list[str]]:
    """Cells of every Markdown table row (header and separator rows included)."""
    text = readme_text() if text is None else text
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.lstrip().startswith("|")]


def expand(word: str, variables: dict[str, str]) -> str:
    """Replaces $NAME and ${NAME} from `variables`; unknown names stay as written."""
    return _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), word)


def assignment(words: tuple[str, ...]) -> tuple[str, str] | None:
    """`NAME=value` or `export NAME=value` as (NAME, value), else None."""
    rest = words[1:] if words[0] == "export" else words
    if len(rest) == 1 and re.fullmatch(r"[A-Za-z_]\w*=.*", rest[0], re.DOTALL):
        name, value = rest[0].split("=", 1)
        return name, value
    return None


def is_placeholder(value: str) -> bool:
    """`agents/agt_...`: a value the reader copies from an earlier answer."""
    return "..." in value

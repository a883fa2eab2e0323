"""Every Python example in the README and the pages of ``docs/`` (subfolders too) runs as written.

A block whose first line is ``# name.py`` is a file of a recipe (written next to the others
of its page, run by the recipe's own test); every other ``python`` block is a script, run in
a fresh interpreter with ``OTELKIT_EXPORTER=console`` so that it needs no Collector. A block
preceded by ``<!-- docs-test: skip: why -->`` is skipped with that reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]  # the site's pages too
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"<!-- docs-test: skip: (.+?) -->")
_FILE = re.compile(r"^# ([\w./-]+\.py)\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str
    skip: str | None

    @property
    def file_name(self) -> str | None:
        match = _FILE.match(self.code)
        return match.group(1) if match else None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        skip = _SKIP.search(lines[start - 1]) if start else None
        found.append(
            Block(page, start + 1, match.group(1), "\n".join(body) + "\n", skip and skip.group(1))
        )
        i += 1
    return found


def recipe_files(page: Path) -> dict[str, str]:
    """``{file name: code}`` of the ``# name.py`` blocks of ``page``."""
    return {b.file_name: b.code for b in blocks(page) if b.language == "python" and b.file_name}


SCRIPTS = [b for page in PAGES for b in blocks(page) if b.language == "python" and not b.file_name]


def example_env() -> dict[str, str]:
    """The environment an example runs in: no Collector needed, no inherited relay."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env["OTELKIT_EXPORTER"] = "console"
    return env


def run_example(block: Block, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run ``block`` as ``example.py`` in ``directory``, next to its page's recipe files."""
    for name, code in recipe_files(block.page).items():
        (directory / name).write_text(code)
    script = directory / "example.py"
    script.write_text(block.code)
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        env=example_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("block", SCRIPTS, ids=str)
def test_example_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    result = run_example(block, tmp_path)
    assert result.returncode == 0, f"{block} failed:\n{result.stderr[-3000:]}"


def test_the_child_process_example_relays_every_workers_records(tmp_path: Path) -> None:
    (block,) = [b for b in SCRIPTS if b.page.name == "README.md" and "Pool(" in b.code]
    result = run_example(block, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    items = set(re.findall(r"transcoding item (\d+)", result.stderr))
    assert items == {str(n) for n in range(100)}
    assert "media.items" in result.stderr  # the workers' counters, relayed at their exit

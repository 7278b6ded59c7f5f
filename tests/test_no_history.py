"""Tracked text speaks of the project only: no development diary, no paths of the machines it was built on.

A reader of the code, the docs or a test name cannot look up a past work session or an issue number,
and an absolute path of a build machine points at nothing on theirs. Run-time paths (pytest's
tmp_path, a path a user passes) never appear as literals, so they are not affected.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Measured outputs and binary artefacts: they record what a tool printed, not what the project says.
DATA_SUFFIXES = frozenset(
    {".csv", ".json", ".log", ".txt", ".tex", ".sqlite", ".npz", ".png", ".pdf", ".svg", ".pt", ".tfrecord"}
)

# Written so that this file does not match itself.
PATTERNS: dict[str, re.Pattern[str]] = {
    "a work-session number": re.compile(r"\bsessions?[\s-]+\d", re.IGNORECASE),
    "an issue number": re.compile(r"\bissues?[\s-]*#?\d", re.IGNORECASE),
    "a build machine's path": re.compile(r"(?<![\w.~$])/(?:wor[k]|tm[p])/|/hom[e]/[a-z_][\w.-]*/"),
}


def tracked_text_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    files = []
    for name in listing.split("\0"):
        path = ROOT / name
        if not name or path.suffix.lower() in DATA_SUFFIXES or not path.is_file():
            continue
        head = path.read_bytes()[:8192]
        if b"\0" in head:  # binary
            continue
        files.append(path)
    return files


def findings(text: str) -> list[str]:
    """Each line of `text` that mentions history or a build machine's path, with what it mentions."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in PATTERNS.items():
            match = pattern.search(line)
            if match:
                found.append(f"{number}: {what} ({match.group(0).strip()!r}): {line.strip()[:100]}")
    return found


@pytest.mark.parametrize(
    "text",
    [
        # Split so that this file itself stays clean.
        "measured in sess" + "ion 5",
        "the Sess" + "ion-6 run",
        "sess" + "ions 5 and 6",
        "see Iss" + "ue 13",
        "iss" + "ue #16's target",
        "iss" + "ues 13/14",
        "read in /" + "work/shared/specs",
        "kept under /" + "home/alice/runs",
        "written to /" + "tmp/out.csv",
    ],
)
def test_the_check_catches(text: str) -> None:
    assert findings(text)


@pytest.mark.parametrize(
    "text",
    [
        "a sessionless store",
        "no known issues",
        "the tissue 5 dataset",
        "results/digits/space1",
        "~/.cache/nasbench-1shot1-harness",
        "$TMPDIR/tmp/x (a user's variable)",
        "print(tmp_path / 'work' / 'x')",
    ],
)
def test_the_check_lets_through(text: str) -> None:
    assert not findings(text)


def test_tracked_text_has_no_history_and_no_machine_paths() -> None:
    problems = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(ROOT)}:{line}" for line in findings(text)]
    assert not problems, "tracked files mention development history or build-machine paths:\n" + "\n".join(
        problems
    )

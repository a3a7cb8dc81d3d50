"""The documentation says what is there: the README's two commands, links that lead
somewhere, and command lines that the command line accepts.

`mkdocs build --strict` (CI) checks the links between pages under `docs/`; the README
lies outside the site, and code blocks are not checked by it, so both are checked here.
"""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
DOCUMENTS = [README, ROOT / "CHANGELOG.md", *PAGES]

#: The README's two commands, exactly: CI and the people who follow the README run them.
MAIN_JOB = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[cpu]" '
    "&& python -m keras_minent train --epochs 5"
)
TEST_COMMAND = "bash .ci/run"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)


def _code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def _prose(text: str) -> str:
    """The text without its code blocks and inline code (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor of a heading, as MkDocs's toc makes it: lowercase, punctuation
    dropped, each run of spaces and hyphens one hyphen."""
    text = re.sub(r"[^\w\- ]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: pathlib.Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_readme_holds_the_two_commands_in_their_blocks():
    blocks = [b.strip() for b in _code_blocks(README.read_text(encoding="utf-8"))]
    assert MAIN_JOB in blocks
    assert TEST_COMMAND in blocks


def test_getting_started_holds_the_same_two_commands():
    blocks = [b.strip() for b in _code_blocks((ROOT / "docs/getting-started.md").read_text())]
    assert MAIN_JOB in blocks and TEST_COMMAND in blocks


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings(path):
    broken = []
    for target in LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, broken


def test_the_link_check_sees_a_broken_link(tmp_path):
    # The check above cannot pass by finding nothing: it reads links of this form.
    page = tmp_path / "page.md"
    page.write_text("See [a](missing.md) and `[b](ignored.md)`.\n\n## A heading: `x`\n")
    assert LINK.findall(_prose(page.read_text())) == ["missing.md"]
    assert _anchors(page) == {"a-heading-x"}


def _command_lines(text: str) -> list[str]:
    """The arguments of each `python -m keras_minent ...` command of the code blocks
    and inline code (continuation lines joined; environment assignments before it, `&&` chains and
    comments after it set aside)."""
    commands = []
    inline = re.findall(r"`(python -m keras_minent [^`|]*)`", text)  # not the layout's a|b
    for block in [*_code_blocks(text), *inline]:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip().rstrip("&").strip()
            if "python -m keras_minent" not in line or "..." in line:
                continue  # "..." elides a command's options
            for part in line.split("&&"):
                words = shlex.split(part)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)
                if words[:3] == ["python", "-m", "keras_minent"]:
                    commands.append(shlex.join(words[3:]))
    return commands


DOCUMENTED = sorted({c for p in [README, *PAGES] for c in _command_lines(p.read_text())})


def test_documented_commands_are_found():
    # The guides show every command; a change to the extraction must not lose them.
    assert len(DOCUMENTED) >= 20
    assert "train --epochs 5" in DOCUMENTED
    assert any(c.startswith("tune ") for c in DOCUMENTED)
    assert any(c.startswith("reproduce ") for c in DOCUMENTED)


@pytest.mark.parametrize("command", DOCUMENTED)
def test_documented_command_is_accepted(command):
    """Every command a page shows parses, and makes a configuration the run accepts
    (nothing is trained)."""
    from keras_minent.cli import build_parser, options_to_config
    from keras_minent.training import TrainConfig

    args = build_parser().parse_args(shlex.split(command))  # exits 2 if refused
    if args.command == "tune":
        pytest.importorskip("keras_tuner")
        from keras_minent.tuning import TuneConfig

        options_to_config(TuneConfig, args)
    else:
        options_to_config(TrainConfig, args)

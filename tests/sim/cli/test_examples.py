"""Every example a user is shown runs as written: the calc/decode lines of README.md's
"Setting up and running" and the examples at the end of each calc/decode ``--help``."""
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dmsim.sim.cli.main import main

README = Path(__file__).resolve().parents[3] / "README.md"


def _command(line: str) -> list[str]:
    """Return the argv of one example line (its trailing ``# comment`` dropped)."""
    words = shlex.split(line, comments=True)
    assert words[0] == "dmsim", line
    return words[1:]


def readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Setting up and running", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S) for line in block.splitlines()]
    return [line for line in lines if line.startswith(("dmsim calc ", "dmsim decode "))]


def toolbox_commands() -> list[tuple[str, click.Command]]:
    return [(f"{group} {name}", cmd) for group in ("calc", "decode")
            for name, cmd in sorted(main.commands[group].commands.items())]


def help_examples() -> list[str]:
    return [line.strip() for _, cmd in toolbox_commands() for line in (cmd.epilog or "").splitlines()
            if line.strip().startswith("dmsim ")]


def _run(line: str) -> None:
    result = CliRunner().invoke(main, _command(line), catch_exceptions=False)
    assert result.exit_code == 0, f"{line}\n{result.output}"
    assert "..." not in line


def test_readme_has_calc_and_decode_examples():
    examples = readme_examples()
    assert len(examples) >= 8 and any("milenage" in e for e in examples) and any("decode ota" in e for e in examples)


@pytest.mark.parametrize("line", readme_examples())
def test_readme_example_runs(line):
    _run(line)


def test_every_calc_and_decode_command_shows_examples():
    missing = [name for name, cmd in toolbox_commands() if "dmsim " not in (cmd.epilog or "")]
    assert not missing
    res = CliRunner().invoke(main, ["calc", "milenage", "--help"])
    assert "Examples:" in res.output and "465b5ce8b199b49faa5f0a2ee238a6bc" in res.output


@pytest.mark.parametrize("line", help_examples())
def test_help_example_runs(line):
    _run(line)

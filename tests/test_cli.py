"""The console command: help, version and unknown commands behave like a well-kept CLI."""

from __future__ import annotations

from conftest import run_sonosteer

from sonosteer import __version__
from sonosteer.cli import main


def test_version_and_help():
    out = run_sonosteer("--version")
    assert out.returncode == 0 and __version__ in out.stdout
    out = run_sonosteer("--help")
    assert out.returncode == 0 and "bench" in out.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out

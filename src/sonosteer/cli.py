"""The `sonosteer` command. Each layer registers its own subcommands from a light `commands` module."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(commands, bench)`: `commands` and `bench` are argparse
# subparser groups for top-level commands and `sonosteer bench <target>`. Registration must
# stay cheap (no torch import); heavy imports happen inside the command functions.
COMMAND_MODULES = (
    "sonosteer.audio.commands",
    "sonosteer.bridge.commands",
    "sonosteer.engine.commands",
    "sonosteer.serve.commands",
)


def build_parser() -> argparse.ArgumentParser:
    from sonosteer import __version__

    parser = argparse.ArgumentParser(
        prog="sonosteer",
        description="A music visualizer played like an instrument.",
    )
    parser.add_argument("--version", action="version", version=f"sonosteer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench_parser = commands.add_parser("bench", help="run a benchmark and append it to BENCHMARKS.md")
    bench = bench_parser.add_subparsers(dest="bench_target", metavar="TARGET")
    bench_parser.set_defaults(func=lambda args: (bench_parser.print_help(), 2)[1])
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands, bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

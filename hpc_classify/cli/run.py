"""Placeholder until the 'run' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("run", help="(not implemented yet)")

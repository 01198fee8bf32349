"""Placeholder until the 'bench' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("bench", help="(not implemented yet)")

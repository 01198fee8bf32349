"""Placeholder until the 'demo' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("demo", help="(not implemented yet)")

"""Placeholder until the 'node' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("node", help="(not implemented yet)")

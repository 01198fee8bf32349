"""Placeholder until the 'status' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("status", help="(not implemented yet)")

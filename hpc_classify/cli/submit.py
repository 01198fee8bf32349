"""Placeholder until the 'submit' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("submit", help="(not implemented yet)")

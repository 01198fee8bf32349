"""Placeholder until the 'fetch_models' subcommand lands (its owner replaces this file)."""


def register(subparsers) -> None:
    subparsers.add_parser("fetch-models", help="(not implemented yet)")

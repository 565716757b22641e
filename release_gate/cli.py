"""The `release-gate` command. Its subcommands arrive with the component."""

import click


@click.group(help="Release gate for CI: locks, canary, judge, rollback.")
def main() -> None:
    pass

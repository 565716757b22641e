"""The `sentinel` command. Its subcommands arrive with the component."""

import click


@click.group(help="Sentinel: business signals and alerts.")
def main() -> None:
    pass

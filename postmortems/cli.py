"""The `postmortem` command. Its subcommands arrive with the component."""

import click


@click.group(help="Incidents and mandatory postmortems.")
def main() -> None:
    pass

"""The `release-gate` command. Its subcommands arrive with the component."""

import sys

import click


@click.group(help="Release gate for CI: locks, canary, judge, rollback.")
def main() -> None:
    pass


@main.command()
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("r"),
    help='JSON {"canary": [samples], "control": [samples]} (\'-\' for standard input).',
)
def judge(input_file) -> None:  # type: ignore[no-untyped-def]
    """Replay the judge on recorded counts; one JSON verdict on stdout."""
    from release_gate.judge import judge as run_judge
    from release_gate.judge.reading import JudgeInputError, parse_judge_input

    try:
        data = parse_judge_input(input_file.read(), source=input_file.name)
    except JudgeInputError as exc:
        click.echo(f"release-gate judge: {exc}", err=True)
        sys.exit(2)
    click.echo(run_judge(data, final=True).model_dump_json())

"""`oxdeai eval`: placeholder replaced below."""
import click


@click.command(name="eval")
def eval_command() -> None:
    """Decide one request or a trace."""

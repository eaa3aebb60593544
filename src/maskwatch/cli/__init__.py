"""The ``maskwatch`` command line: a thin layer that parses arguments and formats results.

Every command calls the library; errors are one line (exit code 2 for bad input), never a traceback (set
``MASKWATCH_DEBUG=1`` to see one). Each module here adds one group of commands with ``register(app)``;
``common`` holds what they share. Light at import time: a command imports torch and the rest when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from maskwatch import __version__
from maskwatch.cli import compare, data, demo, detect, evaluate, serve, train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Face-mask detection: find faces in photos, video and cameras; train, evaluate and export the classifier.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"maskwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


for _group in (detect, evaluate, train, compare, serve, data, demo):  # the order `maskwatch --help` lists them
    _group.register(app)


def main() -> None:
    app(prog_name="maskwatch")

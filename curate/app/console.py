"""What the command line prints: its two consoles, one-line errors, warnings and notes, and its spinner.

Results go to stdout (``out``); progress, warnings and errors to stderr (``err``), so a command's output can
be piped. An error is one line and a non-zero exit, never a traceback. What they print of the user's (file and
class names, paths, messages quoting them) is :func:`plain`: rich reads ``[...]`` as markup, so a class named
``[person]`` printed as nothing, and a path holding ``[/x]`` raised MarkupError.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def plain(text) -> str:
    """``text`` (anything: a path, a name, a message) as rich prints it literally, ``[...]`` included."""
    return escape(str(text))


def fail(message: str, code: int = 1) -> None:
    """One clear line on stderr, then exit non-zero."""
    err.print(f"[bold red]error:[/] {plain(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {plain(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    err.print(f"[yellow]note:[/] {plain(message)}", highlight=False, soft_wrap=True)


def spinner():
    """A transient spinner with the elapsed time on stderr, for a command's long work."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True)

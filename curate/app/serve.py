"""``curate review``'s App session: say where the App is and what to do, then serve it until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

from curate.app.console import out, plain


def serve(session, fo_dataset, view_name: str | None, root: Path, *, port: int, remote: bool) -> None:
    """Print where the App is and what to do, then block until Ctrl-C; always stop the App server."""
    from curate.fiftyone.review import close, instructions, view_url

    try:
        out.print(
            plain(
                f"FiftyOne App: {view_url(session, fo_dataset, view_name)}"
                + (f"  (view {view_name})" if view_name else "")
            ),
            soft_wrap=True,
        )
        if remote:
            out.print(
                f"remote: from your machine, `ssh -N -L {port}:127.0.0.1:{port} USER@HOST`, then open http://localhost:{port}"
            )
        out.print(plain(instructions(root)), highlight=False, soft_wrap=True)
        session.wait(-1)
    except KeyboardInterrupt:
        out.print("stopping the App")
    finally:
        close(session)

"""``curate review``'s options: one model for the command line and the recipe's ``review:`` stage."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from curate.core.options import Options


class ReviewOptions(Options):
    """Which view the App opens and where it listens."""

    check: Optional[str] = Field(None, description="Open the view of this check only. Default: all flagged samples.")
    port: int = Field(5151, description="Port of the FiftyOne App.")
    remote: bool = Field(False, description="Serve on all interfaces, for a browser on another machine.")
    discard_edits: bool = Field(
        False,
        description="The dataset changed on disk: start over, deleting the review held in FiftyOne "
        "(by default it is carried over or kept).",
    )

    def command(self, dataset: object) -> str:
        """The ``curate review`` command line with these options (the defaults left out)."""
        return (
            f"curate review {dataset}"
            + (f" --check {self.check}" if self.check else "")
            + (f" --port {self.port}" if self.port != ReviewOptions.model_fields["port"].default else "")
            + (" --remote" if self.remote else "")
            + (" --discard-edits" if self.discard_edits else "")
        )

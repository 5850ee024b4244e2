"""`curate review`: open the FiftyOne App on the audit's flagged samples, ready to fix boxes by hand.

The reviewer's edits live in the dataset's own persistent FiftyOne dataset (the App saves each edit to its
database); ``curate export`` turns them back into a YOLO folder. When the YOLO folder changed since it was
loaded, :func:`curate.fiftyone.load.to_fiftyone` rebuilds the FiftyOne dataset and hands the review over (carried, or
kept under a dated name with a note), so starting a review never throws one away.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from curate.core.dataset import Dataset
from curate.fiftyone.identity import find_fiftyone, fingerprint
from curate.fiftyone.load import to_fiftyone
from curate.fiftyone.samples import EXCLUDE_TAG
from curate.fiftyone.tags import AUDIT_PREFIX, audit_view_name

if TYPE_CHECKING:
    import fiftyone as fo

#: The label field the App's Annotate tab edits.
LABEL_FIELD = "ground_truth"
#: Detection attributes a reviewer must not edit (they tie a box to its line in the label file).
READ_ONLY_ATTRS = ("line", "class_id")


class ReviewError(Exception):
    """Review cannot start safely (one line for the CLI)."""


def has_audit(fo_dataset: "fo.Dataset") -> bool:
    """Whether an audit has tagged ``fo_dataset`` (it saves views ``audit/<check>``)."""
    return any(v.startswith(f"{AUDIT_PREFIX}/") for v in fo_dataset.list_saved_views())


def activate_annotation(fo_dataset: "fo.Dataset", names: list[str]) -> None:
    """Give ``ground_truth`` a label schema and activate it, so the App's Annotate tab offers box, class
    and delete tools. All the dataset's classes are offered (not only those present), and ``line`` and
    ``class_id`` are read-only: the export matches an edited box to its line through them."""
    schema = fo_dataset.generate_label_schemas(LABEL_FIELD)
    schema["classes"] = list(names)
    schema["component"] = "dropdown" if len(names) > 5 else "radio"
    for attr in schema.get("attributes", []):
        if attr["name"] in READ_ONLY_ATTRS or attr["name"].startswith(f"{AUDIT_PREFIX}_"):
            attr["read_only"] = True
    fo_dataset.update_label_schema(LABEL_FIELD, schema)
    fo_dataset.activate_label_schemas(LABEL_FIELD)


def prepare_review(
    dataset: Dataset,
    *,
    check: str | None = None,
    discard_edits: bool = False,
    on_check: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> tuple["fo.Dataset", str | None]:
    """The FiftyOne dataset to review and the saved view to open (``audit/<check>``, ``audit/all`` by
    default; None when the audit flagged nothing).

    Runs the audit (default options and output folder) when the FiftyOne dataset is missing, out of date
    or untagged. A FiftyOne dataset loaded before ``dataset`` changed on disk is rebuilt with its review
    handed over (``note`` says where it went); ``discard_edits`` starts over without it.
    """
    existing = find_fiftyone(dataset, note=note)
    stale = existing is not None and existing.info.get("curate_fingerprint") != fingerprint(dataset)
    fo_dataset = to_fiftyone(dataset, overwrite=discard_edits and stale, note=note)
    if not has_audit(fo_dataset):
        from curate.audit.runner import run_audit

        run_audit(dataset, on_check=on_check, note=note)
        fo_dataset = to_fiftyone(dataset, note=note)
    activate_annotation(fo_dataset, dataset.names)
    views = fo_dataset.list_saved_views()
    view_name = audit_view_name(check or "all")
    if view_name not in views:
        if check is not None:
            flagged = sorted(
                v.split("/", 1)[1] for v in views if v.startswith(f"{AUDIT_PREFIX}/") and v != audit_view_name("all")
            )
            raise ReviewError(
                f"--check {check}: the audit flagged nothing for it (flagged: {', '.join(flagged) or 'nothing'})"
            )
        return fo_dataset, None
    return fo_dataset, view_name


def launch(fo_dataset: "fo.Dataset", view_name: str | None, *, port: int = 5151, remote: bool = False) -> Any:
    """Serve the App on ``fo_dataset`` (on the saved view ``view_name`` if given); returns the session.

    ``remote`` listens on all interfaces for a browser on another machine; otherwise only on localhost.
    Nothing is opened automatically: the caller prints the URL.
    """
    import fiftyone as fo

    view = fo_dataset.load_saved_view(view_name) if view_name else None
    return fo.launch_app(
        fo_dataset,
        view=view,
        port=port,
        address="0.0.0.0" if remote else "127.0.0.1",
        remote=remote,
        auto=False,
    )


def view_url(session: Any, fo_dataset: "fo.Dataset", view_name: str | None) -> str:
    """The App URL that opens the saved view directly (its slug drops the ``/``)."""
    if "?" in session.url:  # a proxied App (Colab, Databricks, proxy_url): keep FiftyOne's own URL
        return session.url
    base = session.url.rstrip("/")
    if "//0.0.0.0:" in base:  # --remote listens everywhere; a browser elsewhere needs this host's name
        import socket

        base = base.replace("0.0.0.0", socket.getfqdn())
    url = f"{base}/datasets/{fo_dataset.slug}"
    if view_name:
        import fiftyone.core.utils as fou

        url += f"?view={fou.to_slug(view_name)}"
    return url


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM/SIGHUP (``kill``, a closed terminal) like Ctrl-C inside the block, so the caller's
    ``finally: close(session)`` runs — otherwise the App server would outlive ``curate review``."""

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def close(session: Any) -> None:
    """Stop the App server for good (Ctrl-C must leave no server behind)."""
    import fiftyone.core.session as fos

    try:
        session.close()
    finally:
        server = getattr(fos, "_server_services", {}).pop(session.server_port, None)
        if server is not None:
            server.stop()


INSTRUCTIONS = (
    "In the App: click a sample to expand it, open the Annotate tab on the right, click a box to move or "
    "resize it, change its label, or delete it; draw a new box with the box tool.\n"
    f"Tag a sample '{EXCLUDE_TAG}' to leave it out of the export; tag a label 'ok' to mark it fine "
    "(later audits won't flag it again), or a sample 'ok' to mark the image fine (its image-level findings). "
    "Edits are saved as you make them.\n"
    "When done, press Ctrl-C here and run:  curate export {root} --out FIXED/"
)


def instructions(root: Path) -> str:
    return INSTRUCTIONS.replace("{root}", str(root))

"""The check contract: :class:`Check` (what a check declares and does), :class:`Shared` (a computation
several checks use, prepared once by the runner) and :class:`AuditContext` (what every check receives)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from curate.core import defaults
from curate.core.dataset import Dataset
from curate.core.findings import Finding

S = TypeVar("S", bound="Shared")


@dataclass
class AuditContext:
    """Inputs shared by all checks of one audit run.

    ``params`` holds per-check options from ``--config`` (``params["grouped"]["threshold"]`` …);
    ``fast`` means no pixel work beyond hashing (``curate audit --fast``); ``model`` is a user's YOLO
    weights path for the ObjectLab check. ``shared`` holds this run's :class:`Shared` computations (image
    signatures, crop features, the box model), one instance per class (:meth:`use`). ``finishing`` is set by a
    runner that calls each module's ``finish(ctx, findings)`` after the last check
    (:func:`curate.audit.runner.score_dataset`): only then may a check leave work running in the background for it.
    """

    dataset: Dataset
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    fast: bool = False
    model: str | None = None
    seed: int = defaults.SEED
    shared: dict[Any, Any] = field(default_factory=dict)
    finishing: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # check name -> why it did not run (e.g. "--fast")

    def threshold(self, check: str) -> float:
        return float(self.params.get(check, {}).get("threshold", defaults.THRESHOLDS.get(check, 0.5)))

    def param(self, check: str, key: str, default: Any) -> Any:
        return self.params.get(check, {}).get(key, default)

    def use(self, kind: type[S]) -> S:
        """This audit's instance of the shared computation ``kind`` (made on first use)."""
        if kind not in self.shared:
            self.shared[kind] = kind()
        return self.shared[kind]


class Shared:
    """A computation several checks use, prepared once per audit by the runner (never by a check).

    A check lists the ones it needs in :attr:`Check.needs`. Before the first check runs, the runner calls
    :meth:`start` of each one that a check about to run (not served from the cache) needs — e.g. the image
    signatures start hashing in a background thread while label-only checks run — and :meth:`stop` of every
    other; after the last check, :meth:`stop` of all. The state lives on the instance, one per audit:
    ``ctx.use(ImageSignatures)`` returns it.
    """

    def start(self, ctx: "AuditContext") -> None:
        """Begin the work in the background (default: nothing; the first use computes it)."""

    def stop(self, ctx: "AuditContext") -> None:
        """Cancel what is still running or was never needed (default: nothing)."""

    def uses(self, ctx: "AuditContext") -> tuple[type["Shared"], ...]:
        """The shared computations this one has still to read (default: none): kept while it is needed."""
        return ()

    def release(self, ctx: "AuditContext") -> None:
        """Drop the result: no check left to run needs it, through :attr:`Check.needs` or :meth:`uses` (default:
        keep it). Why: a result held to the end of the audit sat under every later check's peak (issue #25); a
        later use computes it again."""


class Display(NamedTuple):
    """How the audit report shows a check's findings.

    ``rank``: its place among the report's sections and verdicts (lower first: what breaks training or
    evaluation first, then the box errors behind a bad mAP, then the rest; the first ranked check with
    findings gets "look at these first"). ``colour``: its card, verdict dot and flagged box. ``picture``:
    ``box`` (the image with the box drawn), ``mask`` (also the foreground mask, the evidence of the pixel
    checks), ``pair`` (the image beside the partner its finding names) or ``table`` (nothing to draw).
    ``calibrated``: its score is the probability of a real error, so the verdict sums them.
    """

    rank: int
    colour: str
    picture: str = "box"
    calibrated: bool = False


class Check:
    """One audit check: what it emits, its options, what it needs, how it runs.

    A new check is one module in ``curate/audit/checks/`` with one subclass (plus its test): the registry
    (:func:`curate.audit.checks.registered`) finds it, the runner knows no check by name, the CLI's
    ``--checks`` and ``--config`` accept its names, and the cache keys its findings on its options.

    - :attr:`names`: the check names it emits, its own first (``image_quality`` emits five).
    - :attr:`kind`: what a finding points at — ``box`` (a label line), ``image``, ``pair`` (an image and
      the other image named in its message), ``region`` (an unlabelled area), ``dataset`` or ``note``.
    - :attr:`options`: each option the check reads from ``--config`` with its default (``threshold`` is
      always accepted, from :data:`curate.core.defaults.THRESHOLDS`); ``--config`` is validated against them.
    - :attr:`choices`: the values an option may take where they are a few words or booleans (``embeddings``:
      true, false or auto), not any value of its default's type.
    - :attr:`options_from`: other checks whose options change this one's result (the box model reads the
      options of all three box checks), so a change to any refreshes its cached findings.
    - :attr:`needs`: the :class:`Shared` computations it uses.
    - :attr:`order`: where it runs; cheap label geometry first, so the images are decoded meanwhile.
    - :attr:`display`: how the report shows each name it emits (:class:`Display`); a name without one comes
      last, in grey, drawn as a box.

    A check returns a finding for every item it scored, with a score in [0, 1] (higher = more likely a real
    problem), and words its message with the configured threshold (``ctx.threshold(name)``), never a
    hard-coded 0.5. :meth:`skipped` says why it cannot run in this audit (``--fast``, no ``--model``): it is
    then not run, the report never calls it clean, and an earlier audit's FiftyOne marks of it are kept.
    :meth:`finish` runs after every check, on fresh and cached findings alike (the box checks add the
    foreground masks made in the background meanwhile).
    """

    names: tuple[str, ...] = ()
    description: str = ""
    kind: str = "box"
    order: int = 100
    options: dict[str, Any] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    options_from: tuple[str, ...] = ()
    needs: tuple[type[Shared], ...] = ()
    display: dict[str, Display] = {}

    @property
    def name(self) -> str:
        """Its own check name (the first it emits)."""
        return self.names[0]

    @property
    def module(self) -> str:
        """Its module's short name: the key of its timings and its cached findings."""
        return type(self).__module__.rsplit(".", 1)[-1]

    def skipped(self, ctx: "AuditContext") -> str | None:
        """Why it does not run in this audit, or None when it runs."""
        return None

    def run(self, ctx: "AuditContext") -> list[Finding]:
        raise NotImplementedError

    def finish(self, ctx: "AuditContext", found: list[Finding]) -> None:
        """After every check has run (default: nothing)."""

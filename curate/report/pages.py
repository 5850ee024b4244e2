"""The plain HTML pages (the run summary, the comparison): one Jinja environment for their templates.

Escaping is explicit, the ``esc`` filter (:func:`html.escape`), as the f-string pages it replaced did
(Jinja's autoescape writes quotes differently); a page's final newline is kept.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=False, keep_trailing_newline=True
    )
    env.filters["esc"] = lambda v: html.escape(str(v))
    return env


def render(template: str, **values: Any) -> str:
    """``templates/<template>`` rendered with ``values``."""
    return _environment().get_template(template).render(**values)

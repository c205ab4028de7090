"""Sphinx configuration for the ohws documentation (built by ``scripts/docs``).

Guides are Markdown (MyST); the reference pages are reStructuredText that autodoc fills from
the docstrings and type hints of ``ohws``. The build runs with ``-W -n``: every warning is an
error and every cross reference must resolve.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout, even without an editable install

import ohws  # noqa: E402
import ohws.testing  # noqa: E402
from ohws import webSocket  # noqa: E402

project = "ohws"
author = "the ohws developers"
copyright = "the ohws developers; Apache-2.0"
release = ohws.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

html_theme = "furo"
html_title = f"ohws {release}"
html_static_path: list[str] = []

# Code names keep their straight quotes: ws.on('message') stays as written, never curled.
smartquotes = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The reference: type hints go into the description, members in source order.
autodoc_typehints = "description"
autodoc_typehints_description_target = "all"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True

nitpicky = True
# Types from outside ohws that no inventory here can link (the build has no network, so no
# intersphinx); each is named in prose where it matters.
nitpick_ignore = [
    # callback and iterator types in signatures (Python's standard library)
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "collections.abc.AsyncIterator"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Sequence"),
    # the traceback argument of WebSocket.__exit__ (Python's standard library)
    ("py:class", "types.TracebackType"),
]

# The public surface the reference must cover: checked at the end of every build (a missing
# entry is a warning, so an error under -W), and by tests/test_docs.py on the sources.
PUBLIC = {
    "ohws": list(ohws.__all__),
    "ohws.webSocket": list(webSocket.__all__),
    "ohws.testing": list(ohws.testing.__all__),
}


def _check_public_names(app: Any, exception: BaseException | None) -> None:
    if exception is not None:
        return
    from sphinx.util import logging

    python = app.env.domains["py"]
    documented = set(python.objects) | set(python.modules)
    missing = [
        f"{module}.{name}"
        for module, names in PUBLIC.items()
        for name in names
        if f"{module}.{name}" not in documented
    ]
    if missing:
        logging.getLogger(__name__).warning("public names without a reference entry: %s", ", ".join(missing))


def setup(app: Any) -> None:
    app.connect("build-finished", _check_public_names)

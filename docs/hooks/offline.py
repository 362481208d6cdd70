"""mkdocs hook: the site works offline. MathJax comes from an installed package, and a page
that would load a script or stylesheet from another server fails the build.

The equations on the concept pages are TeX (`pymdownx.arithmatex`) typeset in the reader's
browser by MathJax 3. Loaded from a CDN, a reader without a network saw raw `\\(\\theta_t\\)`.
The `docs` extra installs `django-static-mathjax`, which ships MathJax 3.2.2's release
files unchanged as the Python package `mathjax` (no dependencies; nothing of Django is
used): this hook copies its single-file bundle `es5/tex-svg-full.js` (fonts drawn as SVG
paths, so no font files either) to `javascripts/mathjax/` in the site, where
`extra_javascript` in mkdocs.yml points. `mkdocs serve` serves it the same way.

`on_post_page` then reads every built page and raises when a `<script src>` or stylesheet
`<link href>` names another host (`http:`, `https:` or `//`), so CI's strict build catches
a CDN reference the day it is added.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

BUNDLE = "javascripts/mathjax/tex-svg-full.js"
EXTERNAL = re.compile(r"""<(?:script[^>]*\bsrc|link[^>]*\bhref)\s*=\s*["']((?:https?:)?//[^"']+)["']""", re.I)


def mathjax_bundle() -> Path:
    """The installed MathJax 3 single-file bundle; PluginError naming the install when missing."""
    try:
        import mathjax  # the django-static-mathjax package (MathJax's files, no Python code)
    except ImportError as err:
        raise PluginError('MathJax is not installed: pip install -e ".[docs]" (django-static-mathjax)') from err
    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    if not path.exists():
        raise PluginError(f"{path} is missing: reinstall django-static-mathjax (pip install -e \".[docs]\")")
    return path


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, BUNDLE, abs_src_path=str(mathjax_bundle())))
    return files


def external_references(html: str) -> list[str]:
    """The addresses on other hosts that a page's scripts and stylesheets load from."""
    refs = []
    for match in EXTERNAL.finditer(html):
        tag = html[match.start():html.index(">", match.start())]
        if tag.lower().startswith("<link") and "stylesheet" not in tag.lower():
            continue  # <link rel="canonical"> and the like load nothing
        refs.append(match.group(1))
    return refs


def on_post_page(output: str, page, config) -> str:
    refs = external_references(output)
    if refs:
        raise PluginError(f"{page.file.src_uri} loads {', '.join(sorted(set(refs)))} from another server; the site "
                          "must work offline: ship the file (see docs/hooks/offline.py) or drop the reference")
    return output

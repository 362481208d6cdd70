"""The site works offline: MathJax ships with the docs build, and an external script fails it."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mkdocs")
from mkdocs.exceptions import PluginError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("offline_hook", ROOT / "docs" / "hooks" / "offline.py")
offline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(offline)


def test_external_scripts_and_stylesheets_are_found_and_local_ones_are_not():
    html = ('<script src="../javascripts/mathjax/tex-svg-full.js"></script>'
            '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js"></script>'
            "<script defer src='//unpkg.com/x.js'></script>"
            '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
            '<link rel="canonical" href="https://example.org/page/">'
            '<link rel="stylesheet" href="../assets/stylesheets/main.css"><a href="https://github.com/">repo</a>')
    assert offline.external_references(html) == ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js",
                                                 "//unpkg.com/x.js", "https://fonts.googleapis.com/css?family=Roboto"]
    page = SimpleNamespace(file=SimpleNamespace(src_uri="concepts/gtn.md"))
    with pytest.raises(PluginError, match="concepts/gtn.md loads //unpkg.com/x.js, https://cdn.jsdelivr.net"):
        offline.on_post_page(html, page, {})
    local = '<script src="../javascripts/mathjax/tex-svg-full.js"></script>'
    assert offline.on_post_page(local, page, {}) == local


def test_the_mathjax_bundle_comes_from_the_installed_package_and_mkdocs_yml_uses_it():
    bundle = offline.mathjax_bundle()
    head = bundle.read_bytes()[:2_000_000]
    assert bundle.stat().st_size > 1_000_000 and b"3.2.2" in head  # MathJax 3.2.2's single-file bundle
    config = (ROOT / "mkdocs.yml").read_text()
    assert offline.BUNDLE in config and "docs/hooks/offline.py" in config
    assert "cdn.jsdelivr" not in config and "unpkg" not in config

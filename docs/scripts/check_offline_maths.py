"""Open built pages in headless Chromium with every other server unreachable; check that the maths typeset.

    python -m mkdocs build --strict && python docs/scripts/check_offline_maths.py site

Serves the built site from 127.0.0.1, points Chromium at a dead proxy for everything else
(so a CDN script could not load even on a machine with a network), lets each page run for
a few seconds of virtual time, and reads back the DOM. A page passes when MathJax replaced
its TeX: it holds `<mjx-container>` elements and no `arithmatex` span still shows raw
`\\(...\\)` source. Needs a Chromium binary (`--chromium`, default: `chromium` on PATH; on
Debian `apt-get install chromium`). Not part of the test suite: CI machines have no browser;
`tests/test_docs_offline.py` checks the build side.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

PAGES = ["concepts/gtn/", "concepts/metagradients/", "concepts/recompute/", "tutorials/01_mnist/"]
RAW_TEX = re.compile(r'<span class="arithmatex">\s*\\\(', re.S)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request
        pass


def dump_dom(chromium: str, url: str) -> str:
    # every host but the loopback one (which Chromium never proxies) goes to a closed port
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
           "--virtual-time-budget=15000", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", type=Path, help="the built site folder (mkdocs build)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--pages", nargs="*", default=PAGES)
    args = ap.parse_args(argv)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(args.site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    failed = 0
    try:
        for page in args.pages:
            dom = dump_dom(args.chromium, f"http://127.0.0.1:{server.server_address[1]}/{page}")
            typeset, raw = dom.count("<mjx-container"), len(RAW_TEX.findall(dom))
            ok = typeset > 0 and raw == 0
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {page}: {typeset} typeset equations, {raw} left as raw TeX")
    finally:
        server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

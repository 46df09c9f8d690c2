"""The report in a real browser: headless Chromium loads an HTML report from a file URL with
networking off; no console or page errors, every image decoded, a screenshot that is not blank.

`check(html_path, tmp_path, min_images)` asserts all that (pytest assertions) and returns
False — after `pytest.skip` — only when Chromium is missing and cannot be installed
(`debpkg.ensure`).  Used by tests/test_report.py (the default report) and
tests/test_scenarios.py (every shipped scenario's report)."""

from __future__ import annotations

import html as htmlmod
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from debpkg import ensure


def _chromium() -> str | None:
    for name in ("chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return ensure("chromium", "chromium")


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars"]

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + (e.message || e.type)); }, true);
(function () { var o = console.error; console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
  o.apply(console, arguments); }; })();
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var st = imgs.map(function (i) { return (i.complete && i.naturalWidth > 0) ? 'ok' : 'broken'; });
  var p = document.createElement('pre'); p.id = '__probe';
  p.textContent = JSON.stringify({images: st, errors: window.__errors});
  document.body.appendChild(p);
});
</script>"""


def check(html_path: Path, tmp_path: Path, min_images: int = 1) -> None:
    """Assert that `html_path` renders offline in headless Chromium (see module docstring)."""
    chrome = _chromium()
    if chrome is None:
        pytest.skip("chromium not installed; install it (apt-get install chromium) or run as root with CI=true "
                    "or NETNS_SIM_INSTALL=1 to let this test install it")
    src = html_path.read_text()
    assert "http://" not in src.replace("http://www.w3.org", "") and "https://" not in src, \
        "the report must not need the network"
    probed = tmp_path / "probed.html"
    probed.write_text(src.replace("<head>", "<head>" + PROBE, 1))
    base = CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    p = subprocess.run([chrome, *base, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                        "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=60)
    m = re.search(r'<pre id="__probe">(.*?)</pre>', p.stdout, re.S)
    assert m, f"probe did not run; chromium stderr: {p.stderr[-2000:]}"
    probe = json.loads(htmlmod.unescape(m.group(1)))
    assert probe["images"] and all(s == "ok" for s in probe["images"]), probe["images"]
    assert probe["errors"] == [], probe["errors"]
    console = [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln and ("rror" in ln or "Uncaught" in ln)]
    assert console == [], console
    n_imgs = len(re.findall(r"<img ", src))
    assert len(probe["images"]) == n_imgs >= min_images
    shot = tmp_path / "shot.png"
    subprocess.run([chrome, *base, f"--screenshot={shot}", "--window-size=1280,2000", html_path.as_uri()],
                   capture_output=True, text=True, timeout=60)
    assert shot.is_file(), "no screenshot written"
    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert img.std() > 10, "screenshot is (nearly) one colour"
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    assert not math.isnan(img.mean())

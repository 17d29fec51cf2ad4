# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as it would be published: the Galaxy build, its licence, and its docs site.

The docs site is built with ``scripts/build-docs.sh`` (what ``make docs`` runs), served on a loopback address and
read in Debian's headless Chromium, driven through chromedriver over the W3C WebDriver protocol (JSON over
HTTP, spoken with urllib below). That is the lightest driver that really renders: no Node toolchain
(playwright-core), no Selenium and its selenium-manager (which can fetch drivers and report usage), and unlike
``chromium --dump-dom`` one browser serves every page and answers questions about the rendered page
(HTTP status, stylesheets, what it loaded). Chromium cannot resolve any host name, so it can reach nothing but
the IP address of the site; the tests also check that every page loaded nothing from anywhere else.

A page screenshot of the index is left in tests/output/docs_index.png.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import urllib.request
from functools import partial
from types import SimpleNamespace
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urldefrag, urlsplit

import pytest
import yaml
from ansible import constants as C

from .ansible_runner import BIN
from .devnet_helpers import REPO

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
COLLECTION = f"{GALAXY['namespace']}.{GALAXY['name']}"
# sha256 of the GNU GPL version 3 text as the FSF publishes it (https://www.gnu.org/licenses/gpl-3.0.txt).
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
CHROMIUM = Path("/usr/lib/chromium/chromium")  # Debian's binary itself: its /usr/bin/chromium wrapper adds flags
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = REPO / "tests" / "output"
SITE_ADDRESS = "127.0.0.1"


def clean_env(**extra: str) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C.UTF-8",
            "ANSIBLE_NOCOLOR": "1", **extra}


# --- the Galaxy artifact -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def galaxy_build(tmp_path_factory) -> SimpleNamespace:
    """`ansible-galaxy collection build` of this tree: its output (proc) and its output directory (out)."""
    out = tmp_path_factory.mktemp("galaxy")
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)],
                          env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    return SimpleNamespace(proc=proc, out=out)


def test_galaxy_build_gives_no_warning(galaxy_build) -> None:
    proc, out = galaxy_build.proc, galaxy_build.out
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert [p.name for p in out.iterdir()] == [f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"]


def test_galaxy_artifact_carries_the_licence_and_no_placeholder(galaxy_build) -> None:
    with tarfile.open(next(galaxy_build.out.iterdir())) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
        licence = tar.extractfile("LICENSE").read()
    assert manifest["license"] == ["GPL-3.0-or-later"] and manifest["license_file"] is None
    assert hashlib.sha256(licence).hexdigest() == GPL3_SHA256, "LICENSE is not the verbatim GNU GPL v3 text"
    assert licence == (REPO / "LICENSE").read_bytes()
    # A URL Galaxy shows must be a real one: no reserved example or placeholder domain (RFC 2606).
    for key in ("repository", "documentation", "homepage", "issues"):
        host = urlsplit(manifest[key] or "").hostname or ""
        assert not re.search(r"(^|\.)(invalid|example|test|localhost|example\.(com|org|net))$", host), (key, host)
    # The docs sources ship (antsibull-docs reads them from the installed collection); local build output does not.
    assert "docs/docsite/extra-docs.yml" in names and "docs/docsite/links.yml" in names
    assert not [n for n in names if n.split("/")[0] in (".venv", "tests/output", "collections", ".git")]
    # The release notes ship with it, and they are what antsibull-changelog made of the released fragments.
    assert tar_member(galaxy_build, "CHANGELOG.rst") == (REPO / "CHANGELOG.rst").read_bytes()


def tar_member(build: SimpleNamespace, name: str) -> bytes:
    with tarfile.open(next(build.out.iterdir())) as tar:
        return tar.extractfile(name).read()


def test_changelog_is_released_by_antsibull_changelog_and_in_sync(tmp_path) -> None:
    """`antsibull-changelog lint` is clean, and CHANGELOG.rst is what `generate` writes from changelog.yaml: it
    was made by the tool, never edited by hand. Every released version has its section and its plugins."""
    lint = subprocess.run([str(BIN / "antsibull-changelog"), "lint"], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
    changes = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())
    assert changes["releases"], "no release in changelogs/changelog.yaml"
    # generate rewrites CHANGELOG.rst in place: run it on a copy of just what it reads.
    copy = tmp_path / "tree"
    shutil.copytree(REPO / "changelogs", copy / "changelogs", ignore=shutil.ignore_patterns(".plugin-cache.yaml"))
    for name in ("galaxy.yml", "CHANGELOG.rst"):
        shutil.copy2(REPO / name, copy / name)
    generate = subprocess.run([str(BIN / "antsibull-changelog"), "generate"], cwd=copy, env=clean_env(),
                              capture_output=True, text=True, timeout=300, check=False)
    assert generate.returncode == 0, generate.stdout + generate.stderr
    text = (REPO / "CHANGELOG.rst").read_text()
    assert (copy / "CHANGELOG.rst").read_text() == text, "CHANGELOG.rst differs from what generate writes"
    for version, release in changes["releases"].items():
        assert f"\nv{version}\n" in text, version
        for module in release.get("modules", []):
            assert f"- {COLLECTION}.{module['name']} - " in text, (version, module["name"])


# --- the docs site -----------------------------------------------------------------------------


def documented_content() -> set[tuple[str, str]]:
    """(type, name) of every plugin and role in the source tree that the docs site must have a page for."""
    found: set[tuple[str, str]] = set()
    for ptype in C.DOCUMENTABLE_PLUGINS:
        where = REPO / "plugins" / ("modules" if ptype == "module" else ptype)
        for path in sorted(where.rglob("*")) if where.is_dir() else []:
            if path.name.startswith("_") or path.suffix not in (".py", ".yml", ".yaml"):
                continue
            # Filter and test files may hold several plugins, documented in YAML files named after each.
            if path.suffix == ".py" and ptype in ("filter", "test") and "DOCUMENTATION" not in path.read_text():
                continue
            found.add((ptype, path.stem))
    found.update(("role", role.name) for role in (REPO / "roles").iterdir() if role.is_dir())
    return found


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("docs")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build-docs.sh"), str(BIN.parent), str(dest)],
                          env=clean_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (dest / "html" / "index.html").is_file()
    return dest / "html"


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.requests.append((self.path, int(code)))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site(docs_site) -> Iterator[SimpleNamespace]:
    """The site on a free port of 127.0.0.1: its base URL and the (path, status) of every request it got."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (SiteHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer((SITE_ADDRESS, 0), partial(handler, directory=str(docs_site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(base=f"http://{SITE_ADDRESS}:{server.server_address[1]}/", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Browser:
    """Headless Chromium through chromedriver, over the W3C WebDriver protocol."""

    # Everything the browser is asked about a page, once it has loaded.
    FACTS = """
    const nav = performance.getEntriesByType('navigation')[0];
    const assets = document.querySelectorAll('script[src], img[src], iframe[src], link[rel~="stylesheet"], link[rel~="icon"]');
    return {
      url: location.href, title: document.title, ready: document.readyState,
      status: nav ? nav.responseStatus : null,
      h1: Array.from(document.querySelectorAll('h1'), h => {
        const text = h.cloneNode(true);  // the heading without its permalink icon
        text.querySelectorAll('.headerlink').forEach(a => a.remove());
        return text.textContent.trim();
      }),
      h1_height: document.querySelector('h1') ? document.querySelector('h1').getBoundingClientRect().height : 0,
      ids: Array.from(document.querySelectorAll('[id]'), e => e.id),
      links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
      assets: Array.from(assets, e => e.src || e.href),
      loaded: performance.getEntriesByType('resource').map(r => r.name),
      css_rules: Array.from(document.styleSheets, s => s.cssRules.length).reduce((a, b) => a + b, 0),
    };
    """

    def __init__(self, profile: Path, log: Path) -> None:
        self.log = log
        self.driver = subprocess.Popen([str(CHROMEDRIVER), "--port=0", f"--log-path={log}"], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
        # chromedriver picks a free port and says which: "ChromeDriver was started successfully on port N."
        port = None
        for line in self.driver.stdout:
            if m := re.search(r"started successfully on port (\d+)", line):
                port = int(m.group(1))
                break
        assert port, f"chromedriver did not start; see {log}"
        self.base = f"http://127.0.0.1:{port}"
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,900",
                # Nothing resolves but the site's loopback address: no other host can be reached.
                f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {SITE_ADDRESS}"]
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": str(CHROMIUM), "args": args}}
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - chromedriver on loopback
                return json.load(resp)["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"WebDriver {method} {path}: {exc.read().decode(errors='replace')}") from None

    def open(self, url: str) -> dict[str, Any]:
        self.call("POST", f"/session/{self.session}/url", {"url": url})
        return self.call("POST", f"/session/{self.session}/execute/sync", {"script": self.FACTS, "args": []})

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("GET", f"/session/{self.session}/screenshot")))

    def close(self) -> None:
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    for tool in (CHROMIUM, CHROMEDRIVER):
        assert tool.is_file(), f"{tool} is missing: make install-system (Debian's chromium and chromium-driver)"
    work = tmp_path_factory.mktemp("chromium")
    b = Browser(work / "profile", work / "chromedriver.log")
    try:
        yield b
    finally:
        b.close()


def same_site(url: str, base: str) -> bool:
    return urlsplit(url)[:2] == urlsplit(base)[:2]


@pytest.fixture(scope="module")
def index(site, browser) -> dict[str, Any]:
    page = browser.open(site.base)
    browser.screenshot(OUTPUT / "docs_index.png")
    return page


def test_docs_index_renders_as_the_collection_index(site, index) -> None:
    base = site.base
    assert index["ready"] == "complete" and index["status"] == 200, index
    assert COLLECTION in index["title"], index["title"]
    assert [h.lower() for h in index["h1"]] == [COLLECTION], index["h1"]  # antsibull-docs titles it "Golem.Vm"
    assert index["h1_height"] > 0 and index["css_rules"] > 100, "the page is not laid out with its stylesheets"
    for section in ("description", "guides", "plugin-index", "modules", "inventory-plugins", "role-index"):
        assert section in index["ids"], f"no {section} section in the collection index"
    # Everything the page needs comes from the site itself.
    assert index["loaded"], "the page loaded no script or stylesheet"
    outside = [u for u in index["assets"] + index["loaded"] if not same_site(u, base)]
    assert not outside, outside


def test_every_link_of_the_collection_index_into_the_site_resolves(site, browser, index) -> None:
    base, requests = site.base, site.requests
    targets: dict[str, set[str]] = {}
    for link in index["links"]:
        if same_site(link, base):
            page, fragment = urldefrag(link)
            targets.setdefault(page, set()).add(fragment)
    assert len(targets) > 5, targets
    for page_url, fragments in sorted(targets.items()):
        page = browser.open(page_url)
        assert page["status"] == 200 and page["ready"] == "complete", (page_url, page["status"], page["ready"])
        assert page["h1"], f"{page_url} has no heading"
        missing = sorted(f for f in fragments if f and f not in page["ids"])
        assert not missing, f"{page_url} has no anchor {missing}"
        outside = [u for u in page["assets"] + page["loaded"] if not same_site(u, base)]
        assert not outside, (page_url, outside)
    failed = sorted({(path, code) for path, code in requests if code >= 400})
    assert not failed, f"requests the site could not answer: {failed}"


def test_every_plugin_role_and_guide_has_a_page_linked_from_the_index(site, browser, index) -> None:
    base = site.base
    expected = documented_content()
    assert {("module", "golem_vm"), ("inventory", "golem"), ("role", "configure_vm")} <= expected, expected
    headings: dict[str, str] = {}
    for link in {urldefrag(u)[0] for u in index["links"] if same_site(u, base)}:
        page = browser.open(link)
        assert page["status"] == 200, (link, page["status"])
        headings[urlsplit(link).path] = page["h1"][0] if page["h1"] else ""
    # antsibull-docs heads a plugin page "<FQCN> <type> – <short description>".
    pattern = re.compile(rf"^{re.escape(COLLECTION)}\.(\w+) ({'|'.join(map(re.escape, [*C.DOCUMENTABLE_PLUGINS, 'role']))})\b")
    pages = {(m.group(2), m.group(1)): path for path, h in headings.items() if (m := pattern.match(h))}
    missing = expected - set(pages)
    roles_without_spec = [n for t, n in missing if t == "role" and not (REPO / "roles" / n / "meta" / "argument_specs.yml").is_file()]
    assert not missing, (f"no page linked from the index for {sorted(missing)}"
                         + (f"; roles {roles_without_spec} need meta/argument_specs.yml to be documented" if roles_without_spec else ""))
    assert set(pages) == expected, f"pages for content not in the source tree: {sorted(set(pages) - expected)}"
    # The extra docs: every guide of docs/docsite/extra-docs.yml, under the title its RST file gives it.
    extra = yaml.safe_load((REPO / "docs" / "docsite" / "extra-docs.yml").read_text())
    guides = [doc for section in extra["sections"] for doc in section["toctree"]]
    assert guides, "extra-docs.yml lists no guide"
    for guide in guides:
        rst = (REPO / "docs" / "docsite" / "rst" / f"{guide}.rst").read_text()
        title = re.search(r"^(\S.*)\n(=+)\s*$", rst, re.M).group(1).strip()
        path = next((p for p in headings if p.endswith(f"/docsite/{guide}.html")), None)
        assert path, f"the index does not link to the guide {guide}"
        assert headings[path] == title, (guide, headings[path], title)

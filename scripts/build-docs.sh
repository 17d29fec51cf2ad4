#!/usr/bin/env bash
# Builds the collection's docs site with antsibull-docs and Sphinx, offline.
# Usage: build-docs.sh VENV DEST      (make docs: VENV=.venv/py311, DEST=.venv/docs)
#
# The site documents the collection as users get it: built with `ansible-galaxy collection build`
# (build_ignore applied) and installed, then read by `antsibull-docs --use-current` through ansible-core.
# So a plugin or extra doc that the tarball would miss is missing from the site too.
#   DEST/dist/         the collection tarball
#   DEST/collections/  the tarball installed (ansible_collections/golem/vm)
#   DEST/sphinx/       the Sphinx project from `antsibull-docs sphinx-init`, with its build.sh
#   DEST/html/         the site: DEST/html/index.html is the golem.vm collection index
#   DEST/build.log     antsibull-docs' and Sphinx's output
set -euo pipefail
collection=golem.vm
venv=$1 dest=$2
top=$(cd "$(dirname "$0")/.." && pwd)
case $venv in /*) ;; *) venv="$top/$venv" ;; esac
case $dest in /*) ;; *) dest="$top/$dest" ;; esac
for tool in ansible-galaxy antsibull-docs sphinx-build; do
    if [ ! -x "$venv/bin/$tool" ]; then
        echo "build-docs: $venv/bin/$tool not found (make install-tools)" >&2
        exit 1
    fi
done

rm -rf "$dest"
mkdir -p "$dest"
export PATH="$venv/bin:$PATH"
# Only the collection installed here: never one from ~/.ansible or a checkout on the usual paths.
export ANSIBLE_COLLECTIONS_PATH="$dest/collections"
export ANSIBLE_NOCOLOR=1 LC_ALL=C.UTF-8
log="$dest/build.log"

ansible-galaxy collection build --output-path "$dest/dist" "$top" >>"$log"
ansible-galaxy collection install --offline -p "$dest/collections" "$dest"/dist/*.tar.gz >>"$log"

# One collection, so its index is the site's index page (--squash-hierarchy). --fail-on-error: a plugin whose
# documentation does not parse fails the build instead of getting an error page.
# antsibull-docs wants its destination owned by the user and writable only by them.
install -d -m 0700 "$dest/sphinx"
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
    --project "$collection" --copyright "$collection contributors" --title "$collection collection" \
    --dest-dir "$dest/sphinx" "$collection" >>"$log"
# Offline: no intersphinx downloads (see the appended file).
{ echo; cat "$top/scripts/docs_conf_offline.py"; } >>"$dest/sphinx/conf.py"

# build.sh is antsibull-docs' own recipe: `antsibull-docs collection` writes the RST, then
# `sphinx-build -W --keep-going` turns any Sphinx warning into a failure.
start=$(date +%s)
if ! (cd "$dest/sphinx" && ./build.sh) >>"$log" 2>&1; then
    grep -E -A8 'WARNING|ERROR|Found errors|Traceback' "$log" >&2 || tail -n 40 "$log" >&2
    echo "build-docs: the docs build failed; full log: $log" >&2
    exit 1
fi
mv "$dest/sphinx/build/html" "$dest/html"
echo "docs: $dest/html/index.html ($(find "$dest/html" -name '*.html' | wc -l) pages, antsibull-docs and Sphinx $(($(date +%s) - start)) s)"

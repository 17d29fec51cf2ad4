# --- golem.vm: scripts/build-docs.sh appends this to the conf.py that `antsibull-docs sphinx-init` made ---
# The site is built offline. Intersphinx would download the inventories of Python's, Jinja's and Ansible's
# docs at every build, so it gets none. References into those docs (such as "common return values" or
# ansible-core's ANSIBLE_* settings) then have no target: they are shown as plain text instead of failing the
# build. References to golem.vm's own pages and settings must still resolve (sphinx-build runs with -W).
intersphinx_mapping = {}

GOLEM_VM_LABEL_PREFIX = "ansible_collections.golem.vm."
GOLEM_VM_ENVVAR_PREFIX = "GOLEM_"


def golem_vm_outside_this_site(kind, target):
    """Whether an unresolved std-domain reference points into docs that only intersphinx could link to."""
    if kind == "ref":
        return not target.lower().startswith(GOLEM_VM_LABEL_PREFIX)
    if kind == "envvar":
        return not target.startswith(GOLEM_VM_ENVVAR_PREFIX)
    return False


def golem_vm_leave_unlinked(app, env, node, contnode):
    if node.get("refdomain") != "std" or not golem_vm_outside_this_site(node.get("reftype"), node.get("reftarget", "")):
        return None
    from sphinx.util import logging  # pylint: disable=import-outside-toplevel

    logging.getLogger(__name__).info("offline build: %s %r left unlinked (it is in Ansible's docs)",
                                     node.get("reftype"), node.get("reftarget"))
    return contnode


def setup(app):
    app.connect("missing-reference", golem_vm_leave_unlinked)

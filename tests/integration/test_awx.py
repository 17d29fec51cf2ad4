# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX-readiness: the execution environment definition, the credential type, state shared between jobs,
and interop with the upstream ``golem`` CLI.

AWX cannot run here (no container engine), so the jobs are what AWX hands to ansible-runner: a fresh
private_data_dir per job, the credential injected into it the way AWX renders a custom credential type
(files in ``env/``, environment variables, extra vars), a fresh HOME and a clean environment. The jobs
share nothing but the state: a PostgreSQL database, or the directory of the state file, as jobs in AWX
share only a mounted volume.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible_runner
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .ansible_runner import BIN, Ansible
from .postgres_helpers import admin, postgres, url_for  # noqa: F401  pylint: disable=unused-import
from .devnet_helpers import (
    REPO,
    devnet_env,
    discovery_url,
    keypair,
    open_stream,
    payment_chain,
    plain,
    ssh,
    state_rows,
    status,
)

CREDENTIAL_TYPE = REPO / "extensions" / "awx" / "golem_credential_type.yml"
CLI_VENV = Path(os.environ.get("GOLEM_DEVNET_CACHE", "/var/cache/golem-vm-devnet")) / "venvs" / "requestor-0.1.58-abi0.1.1"


# --- AWX, emulated where it has to be -------------------------------------------------------


def inject_credential(pdd: Path, inputs: dict[str, str]) -> tuple[dict[str, str], dict[str, str], list[Path]]:
    """Render the shipped credential type for one job as AWX does: every ``file`` injector becomes a file
    of its own in ``<pdd>/env`` (``tower.filename``, or ``tower.filename.NAME`` for ``template.NAME``),
    then ``env`` and ``extra_vars`` are rendered in a Jinja2 sandbox. Returns env, extra vars and files."""
    spec = yaml.safe_load(CREDENTIAL_TYPE.read_text())
    fields = {f["id"]: f for f in spec["inputs"]["fields"]}
    # AWX puts only the fields that have a value in the namespace: an empty one is undefined, rendered as "".
    values = {k: v for k in fields if (v := inputs.get(k, fields[k].get("default")))}
    missing = [k for k in spec["inputs"].get("required", []) if not values.get(k)]
    assert not missing, f"AWX would refuse the credential: {missing} required"
    sandbox = ImmutableSandboxedEnvironment()
    (pdd / "env").mkdir(parents=True, exist_ok=True)
    files: dict[str | None, str] = {}
    for key, template in spec["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(prefix="tmp", dir=pdd / "env")
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**values))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        files[key.split(".", 1)[1] if "." in key else None] = path
    filename: Any = files.get(None) if None in files else SimpleNamespace(**files)
    context = {**values, "tower": SimpleNamespace(filename=filename)}
    render = {section: {k: sandbox.from_string(v).render(**context)
                        for k, v in spec["injectors"].get(section, {}).items()}
              for section in ("env", "extra_vars")}
    return render["env"], render["extra_vars"], [Path(p) for p in files.values()]


class Job:
    """One AWX-style job: its own private_data_dir, HOME and credential files; nothing else carried over."""

    def __init__(self, root: Path, name: str, collection: Path, credential: dict[str, str]) -> None:
        self.pdd = root / name
        self.home = self.pdd / "home"
        self.home.mkdir(parents=True)
        self.env, self.extravars, self.files = inject_credential(self.pdd, credential)
        self.env.update({
            "HOME": str(self.home),
            "PATH": f"{BIN}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "ANSIBLE_COLLECTIONS_PATH": str(collection),
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.pdd / "cp"),
        })

    def run(self, playbook_text: str, inventory: dict[str, str], extravars: dict[str, Any]) -> dict:
        """``ansible-runner run`` with a clean environment; returns status, rc, stdout and the events."""
        (self.pdd / "project").mkdir()
        (self.pdd / "project" / "site.yml").write_text(playbook_text)
        (self.pdd / "inventory").mkdir()
        for name, text in inventory.items():
            path = self.pdd / "inventory" / name
            path.write_text(text)
            if text.startswith("#!"):
                path.chmod(0o700)
        env_dir = self.pdd / "env"
        (env_dir / "envvars").write_text(yaml.safe_dump(self.env))
        (env_dir / "extravars").write_text(yaml.safe_dump({**extravars, **self.extravars}))
        (env_dir / "settings").write_text(yaml.safe_dump({"job_timeout": 600, "suppress_ansible_output": True}))
        started = time.monotonic()
        proc = subprocess.run([str(BIN / "ansible-runner"), "run", str(self.pdd), "-p", "site.yml", "--ident", "job"],
                              env={"PATH": self.env["PATH"], "HOME": str(self.home), "LANG": "C.UTF-8"},
                              capture_output=True, text=True, timeout=900, check=False)
        artifacts = self.pdd / "artifacts" / "job"
        events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"))]
        return {"rc": proc.returncode, "status": (artifacts / "status").read_text().strip(),
                "stdout": (artifacts / "stdout").read_text(), "events": events,
                "seconds": time.monotonic() - started}

    def clean_up(self) -> None:
        """AWX removes the private_data_dir after the job: the credential files go with it."""
        for path in self.files:
            path.unlink()


def host_events(run: dict, host: str, event: str) -> list[str]:
    return [e["event_data"].get("task", "") for e in run["events"]
            if e.get("event") == event and e.get("event_data", {}).get("host") == host]


def _pg_schema(postgres: dict) -> str:
    schema = "awx_" + uuid.uuid4().hex[:10]
    with admin(postgres) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


@pytest.fixture(scope="module", params=["postgresql", "volume"])
def awx_flow(request, collection, devnet, tmp_path_factory) -> dict:
    """Job 1 creates a VM with create_vm.yml, an inventory sync lists it, job 2 configures it through the
    synced inventory. Three private_data_dirs that share nothing but the state: a PostgreSQL database the
    credential names (the team's way), or a 'volume' with the state file mounted into every job."""
    root = tmp_path_factory.mktemp("awx")
    volume = root / "volume"  # what AWX mounts into every job's container
    volume.mkdir()
    key = keypair(tmp_path_factory.mktemp("awx-key"))
    network = {"golem_base_rpc_url": status()["golem_base"]["rpc_url"], "discovery_url": discovery_url(),
               "ssh_private_key": key.read_text()}
    postgres = schema = None
    if request.param == "postgresql":
        # Golem Base discovery and a paying account: job 1 rents from SE or US and opens a stream, as a team would.
        postgres = request.getfixturevalue("postgres")
        schema = _pg_schema(postgres)
        credential = {**network, "discovery_driver": "golem-base", "state_url": url_for(postgres, schema),
                      "ethereum_private_key": devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"],
                      "payments_rpc_url": devnet_env()["GOLEM_REQUESTOR_POLYGON_RPC_URL"],
                      "stream_payment_address": devnet_env()["GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"]}
    else:
        # central: the credential carries no payment account, so job 1 can rent only from a provider that takes
        # no payment, the MVP-era DE, which advertises only on central discovery (SE and US refuse an unpaid create).
        credential = {**network, "discovery_driver": "central", "state_path": str(volume / "golem" / "vms.db")}
    name = f"awx-{uuid.uuid4().hex[:8]}"
    motd = f"configured by job 2 ({uuid.uuid4().hex[:6]})"
    flow: dict = {"name": name, "motd": motd, "key": key, "volume": volume, "credential": credential,
                  "backend": request.param, "postgres": postgres, "schema": schema}
    try:
        # Job 1: a project playbook that runs the collection's create_vm.yml, then, in the same job, sees the
        # new VM through the golem.yml inventory source after meta: refresh_inventory.
        job1 = Job(root, "job1", collection, credential)
        flow["job1"] = job1.run(
            "- ansible.builtin.import_playbook: golem.vm.create_vm\n"
            "- name: See the new VM in the inventory within the same job\n"
            "  hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - name: Read the state file again\n      ansible.builtin.meta: refresh_inventory\n"
            "- name: Reach the VM as an inventory host\n  hosts: golem\n  gather_facts: false\n  tasks:\n"
            "    - name: Ping it\n      ansible.builtin.ping:\n",
            {"hosts": f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n",
             "golem.yml": "plugin: golem.vm.golem\n"},
            {"vm_name": name, "vm_install_packages": False})
        flow["job1_home"] = sorted(str(p.relative_to(job1.home)) for p in job1.home.rglob("*"))
        flow["job1_key"] = str(job1.files[0])
        job1.clean_up()

        # The inventory sync: the inventory source (plugin: golem.vm.golem) with the credential's environment,
        # through ansible-runner as AWX runs it; then its private_data_dir is gone, like job 1's.
        sync = root / "sync"
        (sync / "source").mkdir(parents=True)
        (sync / "source" / "golem.yml").write_text("plugin: golem.vm.golem\n")
        # An inventory update gets the credential's env and files; extra vars are for jobs only.
        env, _extra, files = inject_credential(sync, credential)
        started = time.monotonic()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", f"{BIN}:/usr/bin:/bin")  # where ansible-runner looks for ansible-inventory
            out, err = ansible_runner.get_inventory(
                action="list", inventories=[str(sync / "source" / "golem.yml")], response_format="json",
                quiet=True, envvars={**env, "HOME": str(sync / "home"), "ANSIBLE_COLLECTIONS_PATH": str(collection)})
        flow["sync_seconds"] = time.monotonic() - started
        flow["sync"], flow["sync_err"], flow["sync_key"] = out, err, str(files[0])
        for path in files:
            path.unlink()

        # Job 2: AWX gives a job the synced inventory (a script printing what the sync stored), not the source.
        job2 = Job(root, "job2", collection, credential)
        script = f"#!{sys.executable}\nimport sys\nsys.stdout.write({json.dumps(out)!r})\n"
        flow["job2"] = job2.run(
            "- ansible.builtin.import_playbook: golem.vm.configure_fleet\n",
            {"hosts": script},
            {"vm_install_packages": False, "configure_vm_motd": motd})
        flow["job2_key"] = str(job2.files[0])
        job2.clean_up()
        yield flow
    finally:
        cleaner = Ansible(collection, volume / "golem")
        team = {"GOLEM_REQUESTOR_DB_PATH": "", "GOLEM_REQUESTOR_STATE_URL": credential["state_url"]} \
            if postgres else None
        gone = cleaner.module("golem_vm", {"name": name, "state": "absent"}, env=team)
        if postgres:
            with admin(postgres) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert not gone["failed"], f"VM {name} may be left on the network: {gone.get('msg')}"


def _rows(flow: dict) -> dict[str, dict]:
    """Name -> status and config of every row in the flow's shared state."""
    if flow["postgres"]:
        with admin(flow["postgres"]) as conn:
            found = conn.execute(f"SELECT name, status, config FROM {flow['schema']}.vms").fetchall()
    else:
        path = flow["volume"] / "golem" / "vms.db"
        if not path.exists():
            return {}
        with closing(sqlite3.connect(path)) as conn:
            found = conn.execute("SELECT name, status, config FROM vms").fetchall()
    return {name: {"status": status_, "config": json.loads(config)} for name, status_, config in found}


def test_job1_creates_the_vm_and_records_it_only_in_the_shared_state(awx_flow) -> None:
    job1, name = awx_flow["job1"], awx_flow["name"]
    assert job1["rc"] == 0 and job1["status"] == "successful", job1["stdout"][-3000:]
    rows = _rows(awx_flow)
    assert {n: r["status"] for n, r in rows.items()} == {name: "running"}
    # The host key job 1 learnt travels in the row: later jobs check it without job 1's known_hosts.
    assert rows[name]["config"]["host_keys"], rows[name]["config"]
    # The key installed is the credential's own: its public half was derived, no default pair was made.
    assert not [p for p in awx_flow["job1_home"] if "/ssh" in p or p.endswith("vms.db")], awx_flow["job1_home"]
    if awx_flow["postgres"]:
        # Paid with the credential's account, and nothing on any volume.
        assert rows[name]["config"]["stream_id"] is not None, rows[name]["config"]
        assert not any(awx_flow["volume"].iterdir())
    else:
        # Nothing of the collection's went to the job's own HOME (lost with its container).
        assert not [p for p in awx_flow["job1_home"] if ".golem" in p], awx_flow["job1_home"]
        assert not (awx_flow["volume"] / "golem" / "ssh").exists()
    # add_host reached it in the configure play, and after meta: refresh_inventory it is an inventory host.
    assert "Write the message of the day" in host_events(job1, name, "runner_on_ok"), job1["stdout"][-3000:]
    assert "Ping it" in host_events(job1, name, "runner_on_ok"), job1["stdout"][-3000:]


def test_inventory_sync_lists_the_vm_from_the_shared_state(awx_flow) -> None:
    inv, name = plain(awx_flow["sync"]), awx_flow["name"]
    assert inv and name in inv["golem"]["hosts"], (inv, awx_flow["sync_err"])
    hostvars = inv["_meta"]["hostvars"][name]
    assert hostvars["golem_status"] == "running" and hostvars["golem_host_key_known"] is True, hostvars
    # The host key job 1 learnt is pinned from the shared state (the row carries it), not from a file in the
    # sync's container, and checked strictly.
    args = hostvars["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in args and "UserKnownHostsFile=/dev/null" in args, args
    learnt = [key.split()[1] for key in _rows(awx_flow)[name]["config"]["host_keys"]]
    pinned = [word for word in args.replace("'", " ").split() if word.startswith("AAAA")]
    assert pinned and all(key in learnt for key in pinned), (pinned, learnt)
    # golem_vm recorded job 1's key file; the sync's hosts use the sync's own (GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH).
    # Both died with their private_data_dirs: job 2 needs the credential's extra var.
    assert hostvars["golem_ssh_private_key_path"] == awx_flow["job1_key"]
    assert hostvars["ansible_ssh_private_key_file"] == awx_flow["sync_key"]
    assert not Path(awx_flow["job1_key"]).exists() and not Path(awx_flow["sync_key"]).exists()


def test_job2_configures_the_vm_through_the_synced_inventory(awx_flow) -> None:
    job2, name = awx_flow["job2"], awx_flow["name"]
    assert job2["rc"] == 0 and job2["status"] == "successful", job2["stdout"][-3000:]
    assert "Write the message of the day" in host_events(job2, name, "runner_on_ok"), job2["stdout"][-3000:]
    assert awx_flow["job2_key"] != awx_flow["job1_key"]
    # What a user checks: the VM says what job 2 wrote, over SSH with the credential's key.
    vars_ = plain(awx_flow["sync"])["_meta"]["hostvars"][name]
    out = ssh(awx_flow["key"], vars_["ansible_host"], vars_["ansible_port"], "cat /etc/motd")
    assert out.returncode == 0 and out.stdout.strip() == awx_flow["motd"], out.stdout + out.stderr
    print(f"\nAWX flow: job 1 {awx_flow['job1']['seconds']:.1f} s, sync {awx_flow['sync_seconds']:.1f} s, "
          f"job 2 {job2['seconds']:.1f} s")


def test_credential_type_is_what_awx_accepts() -> None:
    spec = yaml.safe_load(CREDENTIAL_TYPE.read_text())
    assert spec["kind"] == "cloud" and set(spec) == {"name", "description", "kind", "inputs", "injectors"}
    fields = {f["id"]: f for f in spec["inputs"]["fields"]}
    assert list(fields) == ["discovery_driver", "golem_base_rpc_url", "discovery_url", "ssh_private_key", "state_path",
                            "state_url", "ethereum_private_key", "payments_rpc_url", "stream_payment_address"]
    # Optional: empty means the contract upstream documents for the payments network.
    assert "stream_payment_address" not in spec["inputs"]["required"]
    # The Ethereum key is a secret (AWX encrypts it and never shows it) and optional: without it only providers
    # that take no payment can be used. The state URL may hold the database password: a secret too.
    assert all(fields[k]["secret"] is True for k in ("ethereum_private_key", "ssh_private_key", "state_url"))
    assert not {"ethereum_private_key", "state_path", "state_url"} & set(spec["inputs"]["required"])
    secrets = {"ssh_private_key", "ethereum_private_key", "state_url"}
    assert not any(f.get("secret") for f in fields.values() if f["id"] not in secrets)
    assert set(spec["injectors"]) <= {"env", "file", "extra_vars"}
    # Every variable the injectors set is one the collection reads.
    plugins = "".join(p.read_text() for p in (REPO / "plugins").rglob("*.py"))
    for var in spec["injectors"]["env"]:
        assert var in plugins, var


def _digest(value: str) -> str:
    """What a test compares instead of a key, so a failing assertion never prints the key itself."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def test_credential_injects_the_payment_account_and_chain(tmp_path: Path) -> None:
    key = devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]
    base = {"discovery_url": "http://127.0.0.1:9001", "ssh_private_key": "k", "state_path": "/v/vms.db"}
    paying = {**base, "ethereum_private_key": key, "payments_rpc_url": "http://127.0.0.10:8545"}
    env, extra, _files = inject_credential(tmp_path / "a", paying)
    assert _digest(env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]) == _digest(key)
    assert env["GOLEM_REQUESTOR_POLYGON_RPC_URL"] == "http://127.0.0.10:8545"
    assert _digest(key) not in json.dumps(extra) and key not in json.dumps(extra), "never an extra var (job output)"
    # Without a key the variable is empty, which the modules and the inventory read as not set; the chain is the
    # public testnet's by default.
    env, _extra, _files = inject_credential(tmp_path / "b", base)
    assert env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"] == ""
    assert env["GOLEM_REQUESTOR_POLYGON_RPC_URL"] == "https://l2.holesky.golemdb.io/rpc"


def test_a_job_pays_with_the_credential_and_never_shows_the_key(
        collection: Path, devnet, providers, tmp_path: Path) -> None:
    """An AWX-style job whose only settings are the credential's tops up a stream on the chain."""
    chain = payment_chain()
    env = devnet_env()
    stream_id = open_stream(providers["se"]["provider_id"], seconds=600)
    before = chain.stream(stream_id)
    key = keypair(tmp_path)
    credential = {"discovery_url": discovery_url(), "ssh_private_key": key.read_text(),
                  "state_path": str(tmp_path / "volume" / "vms.db"),
                  "ethereum_private_key": env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"],
                  "payments_rpc_url": env["GOLEM_REQUESTOR_POLYGON_RPC_URL"],
                  "stream_payment_address": env["GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS"]}
    job = Job(tmp_path, "pay", collection, credential)
    run = job.run(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Top the stream up to an hour\n      golem.vm.golem_stream:\n"
        f"        stream_id: {stream_id}\n        stream_payment_address: \"{chain.contract}\"\n"
        "        runway_hours: 1\n      register: paid\n"
        "    - name: Show it\n      ansible.builtin.debug:\n        var: paid\n",
        {"hosts": f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"}, {})
    job.clean_up()
    assert run["rc"] == 0 and run["status"] == "successful", run["stdout"][-3000:]
    after = chain.stream(stream_id)
    assert after["deposit"] > before["deposit"], "the credential's key paid the top-up"
    assert after["stopTime"] - before["stopTime"] == (after["deposit"] - before["deposit"]) // after["ratePerSecond"]
    secret = env["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"]
    shown = run["stdout"] + json.dumps(run["events"])
    assert secret.removeprefix("0x").lower() not in shown.lower(), "the key must not be in the job's output or events"


# --- the execution environment ---------------------------------------------------------------


def test_execution_environment_requirements_reach_ansible_builder(collection: Path, collection_tarball: Path,
                                                                  tmp_path: Path) -> None:
    # What ansible-builder gathers from the installed collection's meta/execution-environment.yml.
    proc = subprocess.run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(collection)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = yaml.safe_load(proc.stdout.split("\n", 1)[1])
    wanted = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()]
    assert [line.split("#")[0].strip() for line in found["python"]] == wanted, found
    assert any(line.startswith("openssh-client ") for line in found["system"]), found
    # The EE definition shipped for AWX gives a complete build context (no container engine here to build it).
    # It installs golem.vm (not on Galaxy yet) from the tarball `ansible-galaxy collection build` writes into the
    # repository's root; the tree here is that layout, the shipped definition beside this tree's tarball.
    tree = tmp_path / "repo"
    (tree / "extensions" / "awx").mkdir(parents=True)
    (tree / "extensions" / "awx" / "execution-environment.yml").write_bytes(
        (REPO / "extensions" / "awx" / "execution-environment.yml").read_bytes())
    (tree / collection_tarball.name).write_bytes(collection_tarball.read_bytes())
    ctx = tmp_path / "ctx"
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", "extensions/awx/execution-environment.yml",
                           "-c", str(ctx)], capture_output=True, text=True, timeout=120, check=False, cwd=tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ansible-builder only warns when additional_build_files finds nothing; the build would then fail in the image.
    assert "No matches" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    containerfile = (ctx / "Dockerfile").read_text()
    assert "ansible-galaxy" in containerfile and "introspect" in containerfile, containerfile
    # The galaxy requirement is the copied tarball (type file), not a Galaxy name.
    requirements = yaml.safe_load((ctx / "_build" / "requirements.yml").read_text())
    assert not requirements.get("roles"), requirements
    [requirement] = requirements["collections"]
    assert requirement.get("type") == "file", requirements
    assert requirement["name"].endswith("/" + collection_tarball.name), requirements
    copied = ctx / "_build" / requirement["name"]
    assert copied.is_file() and copied.read_bytes() == collection_tarball.read_bytes(), sorted(ctx.rglob("*"))
    # The galaxy stage copies _build to /build and installs from there: relative names start in /build.
    lines = containerfile.splitlines()
    install = next(i for i, line in enumerate(lines) if "ansible-galaxy collection install" in line)
    assert "-r requirements.yml" in lines[install], lines[install]
    assert lines.index("COPY _build /build") < lines.index("WORKDIR /build") < install, containerfile
    # That stage's install, run the same way in _build (offline: nothing may come from Galaxy), gives golem.vm
    # of galaxy.yml's version, with the requirements the builder stage then finds in it.
    installed = tmp_path / "ee-collections"
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
                           "--collections-path", str(installed)],
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
                               "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1"},
                          capture_output=True, text=True, timeout=120, check=False, cwd=ctx / "_build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((installed / "ansible_collections" / "golem" / "vm" / "MANIFEST.json").read_text())
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert manifest["collection_info"]["version"] == version, manifest["collection_info"]
    proc = subprocess.run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(installed)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert yaml.safe_load(proc.stdout.split("\n", 1)[1]) == found
    # meta/execution-environment.yml itself is an EE definition too: its paths are relative to the
    # collection root, so from there it gives a build context with exactly the collection's requirements.
    root = collection / "ansible_collections" / "golem" / "vm"
    own = tmp_path / "own"
    own.mkdir()
    for name in ("requirements.txt", "bindep.txt"):
        (own / name).write_bytes((root / name).read_bytes())
    (own / "execution-environment.yml").write_bytes((root / "meta" / "execution-environment.yml").read_bytes())
    proc = subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(own / "execution-environment.yml"),
                           "-c", str(own / "ctx")], capture_output=True, text=True, timeout=120, check=False, cwd=own)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (own / "ctx" / "_build" / "requirements.txt").read_text() == (root / "requirements.txt").read_text()
    assert "openssh-client" in (own / "ctx" / "_build" / "bindep.txt").read_text()


def test_collection_docs_lint_clean() -> None:
    # The extra docs (docs/docsite) and every plugin's docs, as the Ansible docsite builds them.
    proc = subprocess.run([str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--check-extra-docs-refs",
                           "--validate-collection-refs", "all", "--disallow-unknown-collection-refs", str(REPO)],
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    extra = yaml.safe_load((REPO / "docs" / "docsite" / "extra-docs.yml").read_text())
    guides = [doc for section in extra["sections"] for doc in section["toctree"]]
    assert guides == ["guide_quickstart", "guide_awx"]
    assert all((REPO / "docs" / "docsite" / "rst" / f"{guide}.rst").is_file() for guide in guides)


# --- the upstream golem CLI -----------------------------------------------------------------


def golem_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The upstream ``golem`` CLI with its own HOME, in a network namespace of its own with no interface up:
    it cannot send a packet anywhere, loopback included."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "GOLEM_REQUESTOR_DISCOVERY_DRIVER": "central", "GOLEM_REQUESTOR_DISCOVERY_URL": discovery_url()}
    return subprocess.run(["unshare", "--net", str(CLI_VENV / "bin" / "golem"), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_golem_cli_lists_a_vm_golem_vm_created_and_the_inventory_lists_a_cli_row(
        collection: Path, devnet, providers: dict[str, dict], ssh_key, tmp_path: Path) -> None:
    key = ssh_key[0]
    home = tmp_path / "home"
    home.mkdir()
    # No GOLEM_REQUESTOR_DB_PATH: the collection's default is the CLI's own ~/.golem/requestor/vms.db.
    ansible = Ansible(collection, home / ".golem" / "requestor")
    ansible.env.pop("GOLEM_REQUESTOR_DB_PATH")
    env = {"HOME": str(home)}
    name, cli_name = f"cli-{uuid.uuid4().hex[:8]}", f"cli-row-{uuid.uuid4().hex[:8]}"
    try:
        made = ansible.module("golem_vm", {"name": name, "provider_id": providers["se"]["provider_id"],
                                           "ssh_public_key_path": f"{key}.pub"}, env=env)
        assert not made["failed"], made.get("msg")
        vm = made["vm"]
        assert state_rows(home / ".golem" / "requestor" / "vms.db") == {name: "running"}

        listed = golem_cli(home, "vm", "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        rows = {v["name"]: v for v in json.loads(listed.stdout)["vms"]}
        assert rows[name]["status"] == "running" and rows[name]["provider_ip"] == vm["provider_ip"], rows
        assert rows[name]["config"]["ssh_port"] == vm["ssh_port"], rows[name]
        assert (rows[name]["config"]["cpu"], rows[name]["config"]["memory"], rows[name]["config"]["storage"]) == (
            vm["resources"]["cpu"], vm["resources"]["memory"], vm["resources"]["storage"])

        # A row as the CLI writes it (its own code, its own keys only), for the same VM endpoint.
        code = ("import asyncio, sys\nfrom pathlib import Path\nfrom requestor.db.sqlite import Database\n"
                "db = Database(Path.home() / '.golem/requestor/vms.db')\n"
                "asyncio.run(db.save_vm(sys.argv[1], sys.argv[2], sys.argv[1], "
                "{'cpu': 1, 'memory': 1, 'storage': 10, 'ssh_port': int(sys.argv[3])}))\n")
        saved = subprocess.run([str(CLI_VENV / "bin" / "python"), "-c", code, cli_name, vm["provider_ip"],
                                str(vm["ssh_port"])], env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, timeout=60, check=False)
        assert saved.returncode == 0, saved.stderr
        inventory = tmp_path / "golem.yml"
        inventory.write_text("plugin: golem.vm.golem\n")
        proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
                              env={**ansible.env, **env}, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        inv = plain(json.loads(proc.stdout))
        assert {name, cli_name} <= set(inv.get("golem", {}).get("hosts", [])), (inv, proc.stderr)
        row = inv["_meta"]["hostvars"][cli_name]
        assert (row["ansible_host"], row["ansible_port"], row["ansible_user"]) == (vm["ssh_host"], vm["ssh_port"], "root")
        assert row["golem_status"] == "running" and row["golem_resources"]["cpu"] == 1, row
        # And it is usable: ansible reaches the CLI's row with the key given on the command line.
        proc = subprocess.run([str(BIN / "ansible"), cli_name, "-i", str(inventory), "--private-key", str(key),
                               "-m", "ansible.builtin.command", "-a", "hostname"],
                              env={**ansible.env, **env, "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
                                   "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")},
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0 and name in proc.stdout, proc.stdout + proc.stderr
    finally:
        with closing(sqlite3.connect(home / ".golem" / "requestor" / "vms.db")) as conn:
            conn.execute("DELETE FROM vms WHERE name = ?", (cli_name,))
            conn.commit()
        ansible.module("golem_vm", {"name": name, "state": "absent"}, env=env)

# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_vm with faults injected between it and the local network's real servers (issue 8).

Each case is one inventory host of one play (HostPlay), so the cases run side by side: a fault run,
then the orphan check (no VM on any provider without a row in the state file), a re-run
with the faults spent (it must succeed, and change nothing where the fault run succeeded),
and a destroy. The table of cases and outcomes is written to tests/output/fault_cases.md.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from .ansible_runner import HostPlay
from .devnet_helpers import (
    REPO,
    control,
    devnet_env,
    discovery_url,
    http,
    open_stream,
    payment_chain,
    running_vms,
    state_rows,
    status,
)
from .fault_proxy import FaultProxy

# The request timeout of the cases about one slow answer (a host variable of theirs alone: every other case keeps
# the module's default, so an answer that is only slow because the machine is busy is no fault); SLOW is far
# above it, so the verdict does not hang on the machine's speed.
HTTP_TIMEOUT = 5
SLOW = 15  # seconds a slow answer takes: far more than HTTP_TIMEOUT
# wait_timeout of the slow-post case, so a create answer that never comes costs little. The case is given a
# stream opened beforehand, so the budget covers no chain work before the POST (importing the chain libraries
# and waiting for a block took most of it on a loaded 2-core machine), and the proxy keeps the answer until
# golem_vm hangs up: the POST outlasts the budget whatever the budget and the machine's speed. The budget only
# has to cover the few local requests before the POST, on a machine as loaded as CI's.
CREATE_BUDGET = 45
REPORT = REPO / "tests" / "output" / "fault_cases.md"


@dataclass
class Case:
    key: str
    fault: str  # what goes wrong, for the table
    # "se"/"us": a provider pinned through the proxy; "discovery": central discovery through it;
    # "golem_base": the Golem Base node through it. All but the last run on central discovery.
    target: str
    rule: tuple[str, str, str] | None  # method, path pattern, kind (None: discovery is down)
    options: dict[str, Any] = field(default_factory=dict)
    expect: str = "ok"  # "ok": the task succeeds despite the fault; "fail": it fails with a clear message
    says: str = ""  # what the message (or, for "ok", a warning or the request log) must say
    pinned: bool = True
    country: str | None = None
    task_timeout: int | None = None  # wait_timeout of the fault run; the module's default when None
    pin: str = "se"  # the provider a pinned discovery case names by its address
    given_stream: bool = False  # the test opens the stream to the provider beforehand and passes its id
    request_timeout: int | None = None  # golem_vm's timeout for this case; the module's default when None


R503 = {"status": 503, "headers": {"Retry-After": "1"}, "body": b'{"detail":"busy"}'}
CASES = [
    Case("reset-get", "connection reset on GET /vms/NAME", "se", ("GET", r"/vms/[^/]+$", "reset"),
         says="retried"),
    Case("reset-post", "connection reset on POST /vms, before it reaches the provider", "us",
         ("POST", r"/vms\?", "reset"), expect="fail", says="Connection reset by peer"),
    Case("drop-post", "provider does the create, then the connection drops (client never hears)", "se",
         ("POST", r"/vms\?", "drop_after"), expect="fail", says="Connection reset by peer"),
    Case("500-post", "HTTP 500 on POST /vms", "us", ("POST", r"/vms\?", "status"), expect="fail",
         says="HTTP 500"),
    Case("500-job", "HTTP 500 on the first GET of the create job (the create went through)", "se",
         ("GET", r"/vms/jobs/", "status"), expect="fail", says="HTTP 500"),
    Case("503-job", "HTTP 503 + Retry-After: 1, twice, on GET of the create job", "us",
         ("GET", r"/vms/jobs/", "status"), {**R503, "times": 2}, says="waited for Retry-After"),
    Case("503-post", "HTTP 503 + Retry-After: 1 on POST /vms", "se", ("POST", r"/vms\?", "status"), R503,
         expect="fail", says="HTTP 503"),
    Case("slow-get", f"GET /vms/NAME/access answers after {SLOW} s (timeout {HTTP_TIMEOUT} s)", "us",
         ("GET", r"/access$", "slow"), {"delay": SLOW}, says="retried", request_timeout=HTTP_TIMEOUT),
    Case("slow-post", f"POST /vms never answered while golem_vm waits (wait_timeout {CREATE_BUDGET} s, stream given); "
         "the provider creates the VM", "se", ("POST", r"/vms\?", "hold_answer"), {"delay": 300},
         expect="fail", says="did not answer within", task_timeout=CREATE_BUDGET, given_stream=True),
    Case("cut-job", "GET of the create job: body cut off half-way", "us", ("GET", r"/vms/jobs/", "truncate"),
         says="retried"),
    Case("cut-post", "POST /vms: the provider creates the VM, its answer is cut off", "se",
         ("POST", r"/vms\?", "truncate"), expect="fail", says="broke off before its end"),
    Case("html-access", "GET /vms/NAME/access answers 200 with an HTML page", "us",
         ("GET", r"/access$", "garbage"), says="retried"),
    Case("html-access-always", "GET /vms/NAME/access answers 200 with an HTML page, 4 times in a row", "se",
         ("GET", r"/access$", "garbage"), {"times": 4}, expect="fail", says="is not JSON (text/html) (tried 4 times)"),
    Case("html-post", "POST /vms: the provider creates the VM, the answer is an HTML page", "se",
         ("POST", r"/vms\?", "garbage"), expect="fail", says="is not JSON"),
    Case("disc-down-auto", "discovery down (connection refused), provider chosen by discovery", "discovery",
         None, expect="fail", says="check discovery_url", pinned=False, country="SE"),
    # The MVP-era provider takes no payment, so the address alone is enough to create there.
    Case("disc-down-pinned", "discovery down (connection refused), provider_ip of a provider without payments",
         "discovery", None, says="discovery could not tell", pin="de"),
    # A paying provider's price is in its advertisement: no discovery, no stream, no create.
    Case("disc-down-paying", "discovery down (connection refused), provider_ip of a provider that takes payment",
         "discovery", None, expect="fail", says="no GLM prices of it could be found"),
    Case("disc-503", "discovery answers 503 + Retry-After: 1 twice", "discovery",
         ("GET", r"/advertisements", "status"), {**R503, "times": 2}, says="waited for Retry-After",
         pinned=False, country="US"),
    Case("disc-html", "discovery answers 200 with an HTML page, 4 times in a row", "discovery",
         ("GET", r"/advertisements", "garbage"), {"times": 4}, expect="fail", says="is not JSON", pinned=False,
         country="SE"),
    Case("disc-cut", "discovery's answer is cut off half-way", "discovery", ("GET", r"/advertisements", "truncate"),
         says="retried", pinned=False, country="US"),
    # Golem Base reads are JSON-RPC POSTs; they only read, so they are retried as GETs are.
    Case("gb-down-auto", "Golem Base node down (connection refused), provider chosen by discovery", "golem_base",
         None, expect="fail", says="check golem_base_rpc_url", pinned=False, country="SE"),
    Case("gb-503", "Golem Base node answers 503 + Retry-After: 1 twice", "golem_base",
         ("POST", r"/rpc", "status"), {**R503, "times": 2}, says="waited for Retry-After", pinned=False, country="US"),
    Case("gb-cut", "Golem Base node's answer is cut off half-way", "golem_base", ("POST", r"/rpc", "truncate"),
         says="retried", pinned=False, country="SE"),
]


def _dead_url() -> str:
    """The URL of a stopped server: the address answers every connection with a refusal."""
    proxy = FaultProxy(discovery_url())
    proxy.close()
    return proxy.url


def _golem_base_rpc_url() -> str:
    return status()["golem_base"]["rpc_url"]


def _orphans(names: dict[str, str], rows: dict[str, str], providers: dict[str, dict]) -> list[str]:
    """Case names that run somewhere (hypervisor or provider API) with no row in the state file."""
    running = running_vms()
    found = []
    for name in names.values():
        on_provider = [key for key in ("se", "us") if
                       http("GET", f"{providers[key]['url']}/api/v1/vms/{name}")[0] == 200]
        if (name in running or on_provider) and name not in rows:
            found.append(name)
    return found


def _wait_for_create_jobs(proxy_of: dict[str, FaultProxy], provider_of: dict[str, str], cap: float = 180) -> None:
    """Until each create job a provider accepted through a proxy is ready or failed (or gone)."""
    jobs = []
    for key, url in provider_of.items():
        for method, path, status, body in proxy_of[key].answers:
            if method == "POST" and "/vms?" in path and status == 202:
                jobs.append(f"{url}/api/v1/vms/jobs/{json.loads(body)['job_id']}")
    end = time.monotonic() + cap
    while jobs and time.monotonic() < end:
        jobs = [job for job in jobs if (answer := http("GET", job))[0] == 200 and answer[1].get("status") == "creating"]
        if jobs:
            time.sleep(0.5)
    assert not jobs, f"create jobs still running after {cap:g} s: {jobs}"


def _terminate(stream_ids: list[int]) -> list[str]:
    """End the streams the test opened; what could not be ended, with why (never raised, so a failure of the
    test itself is not hidden behind it)."""
    failed = []
    for stream_id in stream_ids:
        try:
            payment_chain().send(devnet_env()["GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY"], "terminate", stream_id)
        except Exception as exc:  # any failure: reported by the caller
            failed.append(f"{stream_id}: {exc}")
    return failed


def _msg(result: dict[str, Any]) -> str:
    return str(result.get("msg", ""))


@pytest.fixture
def proxies(devnet):
    made: list[FaultProxy] = []

    def make(upstream: str, ip: str | None = None) -> FaultProxy:
        proxy = FaultProxy(upstream, ip=ip)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def test_faults_between_golem_vm_and_the_network(ansible, providers, proxies, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    names = {case.key: f"flt-{case.key}-{suffix}" for case in CASES}
    # Discovery through a proxy of its own: its own address, so its own share of discovery's rate limit.
    discovery = proxies(ansible.env["GOLEM_REQUESTOR_DISCOVERY_URL"])
    hosts: dict[str, dict[str, Any]] = {}
    proxy_of: dict[str, FaultProxy] = {}
    given_streams: list[int] = []
    for case in CASES:
        host: dict[str, Any] = {"vm_name": names[case.key], "discovery_url": discovery.url}
        if case.given_stream:
            given_streams.append(open_stream(providers[case.target]["provider_id"]))
            host["vm_stream_id"] = given_streams[-1]
        if case.country:
            host["vm_country"] = case.country
        if case.task_timeout:
            host["task_timeout"] = case.task_timeout
        if case.request_timeout:
            host["http_timeout"] = case.request_timeout
        if case.target == "golem_base":
            host["discovery_backend"] = "golem_base"
            if case.rule is None:
                host["golem_base_rpc_url"] = _dead_url() + "/rpc"
            else:
                proxy = proxy_of[case.key] = proxies(_golem_base_rpc_url().rsplit("/", 1)[0])
                proxy.inject(*case.rule, **case.options)
                host["golem_base_rpc_url"] = proxy.url + "/rpc"
        elif case.target == "discovery":
            if case.rule is None:
                host["discovery_url"] = _dead_url()
            else:
                proxy = proxy_of[case.key] = proxies(ansible.env["GOLEM_REQUESTOR_DISCOVERY_URL"])
                proxy.inject(*case.rule, **case.options)
                host["discovery_url"] = proxy.url
            if case.pinned:
                host.update(pin_ip=providers[case.pin]["ip"], pin_port=7466)
        else:
            # On the provider's own address (another port): its SSH host is then the address its API answered on.
            proxy = proxy_of[case.key] = proxies(providers[case.target]["url"], ip=providers[case.target]["ip"])
            proxy.inject(*case.rule, **case.options)
            host.update(pin_ip=proxy.ip, pin_port=proxy.port)
        hosts[case.key] = host

    table: dict[str, dict[str, Any]] = {}
    try:
        first = HostPlay(ansible, tmp_path / "fault")
        # central, but where a case says otherwise: these faults are in central discovery's HTTP.
        results = first.play(hosts, discovery_backend="central")
        posts_in_fault_run = {key: len(proxy.requests("POST")) for key, proxy in proxy_of.items()}
        # A create the fault cut short may still be running on its provider: the orphan check waits until
        # every create job the providers took has ended, however long a busy machine takes to end them.
        _wait_for_create_jobs(proxy_of, {key: providers[case.target]["url"] for case in CASES
                                         if (key := case.key) in proxy_of and case.target in ("se", "us")})
        rows = state_rows(ansible.state_path)
        orphans = _orphans(names, rows, providers)

        second = HostPlay(ansible, tmp_path / "rerun")
        rerun = second.play({k: {**h, "discovery_url": discovery.url, "golem_base_rpc_url": _golem_base_rpc_url(),
                                 "task_timeout": 300, "http_timeout": 30} for k, h in hosts.items()},
                            discovery_backend="central")
        rows_after_rerun = state_rows(ansible.state_path)

        for case in CASES:
            result, fired = results[case.key], 0
            if case.key in proxy_of:
                fired = sum(f.fired for f in proxy_of[case.key].faults)
            table[case.key] = {
                "case": case.fault,
                "expected": case.expect,
                "task": "failed: " + _msg(result) if result.get("failed") else "ok",
                "row after fault": rows.get(names[case.key], "-"),
                "orphan": names[case.key] in orphans,
                "re-run": "failed: " + _msg(rerun[case.key]) if rerun[case.key].get("failed") else
                          f"ok ({rows_after_rerun.get(names[case.key], 'no row')})",
                "re-run changed": rerun[case.key].get("changed"),
                "fired": fired,
            }
        _write_report(table, [first.seconds, second.seconds])

        problems = []
        for case in CASES:
            result, row = results[case.key], table[case.key]
            if case.rule is not None and row["fired"] == 0:
                problems.append(f"{case.key}: the fault never fired")
            if case.expect == "ok" and result.get("failed"):
                problems.append(f"{case.key}: should have succeeded: {_msg(result)}")
            if case.expect == "fail":
                if not result.get("failed"):
                    problems.append(f"{case.key}: should have failed")
                elif case.says not in _msg(result) or "Traceback" in _msg(result):
                    problems.append(f"{case.key}: unclear message: {_msg(result)}")
            if rerun[case.key].get("failed") or rows_after_rerun.get(names[case.key]) != "running":
                problems.append(f"{case.key}: the re-run did not converge: {row['re-run']}")
            if case.expect == "ok" and rerun[case.key].get("changed"):
                problems.append(f"{case.key}: the task succeeded, yet its re-run changed something")
        assert orphans == [], f"VMs running without a row: {orphans}"
        assert problems == [], "\n".join(problems)

        # What "ok" has to mean for the retry cases: the fault was there, and the retry got past it.
        for key, kind in (("reset-get", "reset"), ("slow-get", "slow"), ("cut-job", "truncate"),
                          ("html-access", "garbage"), ("disc-cut", "truncate"), ("gb-cut", "truncate")):
            seen = [e[2] for e in proxy_of[key].requests()]
            assert seen.count(kind) == 1 and "pass" in seen[seen.index(kind):], (key, seen)
        for key in ("503-job", "disc-503", "gb-503"):
            log = proxy_of[key].requests(None, r"/vms/jobs/|/advertisements|/rpc")
            assert [e[2] for e in log[:3]] == ["status", "status", "pass"], log
            assert log[1][3] - log[0][3] >= 0.9 and log[2][3] - log[1][3] >= 0.9, "Retry-After not honoured"
        for key in ("reset-post", "drop-post", "500-post", "503-post", "slow-post", "cut-post", "html-post"):
            # A create is never sent twice by one run: the provider may have done it.
            assert posts_in_fault_run[key] == 1, f"{key}: the failed POST was sent again"
            # The re-run sends it again only where the VM is known not to exist; where the provider may still
            # create it (the row kept with status error), the re-run finds it and adopts it instead.
            assert len(proxy_of[key].requests("POST")) <= 2, f"{key}: the re-run sent the create more than once"
        # golem_vm gave up on the POST (its budget or its request timeout ran out first); the proxy never answered.
        assert [f.hung_up for f in proxy_of["slow-post"].faults] == [1], "golem_vm did not give up on the POST"
        # Created on the address given, recorded without what only discovery knows, and the user is told.
        assert results["disc-down-pinned"]["vm"]["provider_id"] is None
        assert "the VM is recorded without the provider's id and country" in first.proc.stderr + first.proc.stdout
        assert rows_after_rerun == dict.fromkeys(names.values(), "running")
    finally:
        try:
            gone = HostPlay(ansible, tmp_path / "destroy").play(
                {k: {"vm_name": n, "vm_state": "absent", "discovery_url": discovery.url} for k, n in names.items()},
                discovery_backend="central")
        finally:
            unended = _terminate(given_streams)  # golem_vm leaves a stream it was given alone
    assert unended == [], f"given streams left open: {unended}"
    assert {k: _msg(r) for k, r in gone.items() if r.get("failed")} == {}
    assert state_rows(ansible.state_path) == {}
    assert not set(names.values()) & set(running_vms()), "a destroyed VM still runs"


def _write_report(table: dict[str, dict[str, Any]], seconds: list[float]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    lines = ["| case | fault | expected | fault run | row after it | orphan | re-run | re-run changed |",
             "|---|---|---|---|---|---|---|---|"]
    for key, row in table.items():
        lines.append(f"| {key} | {row['case']} | {row['expected']} | {row['task'].replace('|', '/')} | "
                     f"{row['row after fault']} | {'YES' if row['orphan'] else 'no'} | {row['re-run']} | "
                     f"{row['re-run changed']} |")
    lines.append("")
    lines.append("play wall time (fault run, re-run): " + ", ".join(f"{s:.1f} s" for s in seconds))
    REPORT.write_text("\n".join(lines) + "\n")


def test_provider_killed_in_the_middle_of_a_create(ansible, providers, proxies):
    """A real kill (SIGKILL) of the MVP provider while its synchronous create runs; restarted at once."""
    proxy = proxies(providers["de"]["url"], ip=providers["de"]["ip"])  # DE's address: its SSH host is its own
    proxy.inject("POST", r"/api/v1/vms", "hook", hook=lambda: control("stop", name="de", timeout=0))
    name = f"flt-kill-{uuid.uuid4().hex[:6]}"
    # The kill comes from the proxy's hook, not from a clock: a budget far above a create costs nothing.
    args = {"name": name, "provider_ip": proxy.ip, "provider_port": proxy.port, "wait": False, "wait_timeout": 300}
    try:
        killed = ansible.module("golem_vm", args)
    finally:
        started = time.monotonic()
        control("start", name="de")
        restart = time.monotonic() - started
    try:
        assert proxy.requests("POST")[-1][2] == "upstream died", "the provider was not killed during the create"
        assert killed["failed"] and "Traceback" not in killed["_stderr"]
        assert "Connection reset by peer" in killed["msg"] or "connection refused" in killed["msg"], killed["msg"]
        rows = state_rows(ansible.state_path)
        on_provider = http("GET", f"{providers['de']['url']}/api/v1/vms/{name}")[0] == 200
        assert name in rows or not (on_provider or name in running_vms()), "an orphan"

        rerun = ansible.module("golem_vm", args)
        assert not rerun["failed"], rerun["msg"]
        assert rerun["vm"]["status"] == "running" and state_rows(ansible.state_path) == {name: "running"}
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        (REPORT.parent / "fault_kill.md").write_text(
            f"| kill-de | provider de (sync API) SIGKILLed as the create arrived; restarted after the task | "
            f"fail | failed: {killed['msg']} | {rows.get(name, '-')} | no | ok (running) | "
            f"{rerun['changed']} |\n\nrestart of de took {restart:.1f} s\n")
    finally:
        gone = ansible.module("golem_vm", {"name": name, "state": "absent"})
    assert not gone["failed"], gone["msg"]
    assert state_rows(ansible.state_path) == {} and name not in running_vms()
    assert http("GET", f"{providers['de']['url']}/api/v1/vms/{name}")[0] == 404

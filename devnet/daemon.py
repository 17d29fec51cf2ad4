# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""devnetd: runs the local Golem network and owns every process in it.

It starts the real upstream discovery server and providers (PyPI packages, each in its
own virtualenv), serves the ``multipass`` socket behind which the sandbox VMs live, and
posts each provider's advertisement to discovery (upstream providers learn their public
IP from internet services and so never advertise offline). Being the parent of all of
it, it reaps every child and takes everything down with it on SIGTERM.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import golembase_net  # noqa: E402
import layout  # noqa: E402
import payments  # noqa: E402
from anvil import RpcError, rpc  # noqa: E402
import postgres  # noqa: E402
from hypervisor import Hypervisor  # noqa: E402

STARTUP_TIMEOUT = 120.0
MIN_ROUND_GAP = 1.0


def http_json(method: str, host: str, port: int, path: str, body: Any = None,
              headers: dict[str, str] | None = None, timeout: float = 5.0,
              source_ip: str = layout.CONTROL_SOURCE_IP) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source_ip, 0))
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


class Child:
    """One upstream server process."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.process: asyncio.subprocess.Process | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        log = open(layout.RUN / "logs" / f"{self.name}.log", "ab")  # noqa: SIM115
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=str(self.cwd), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        (layout.RUN / "pids" / f"{self.name}.pid").write_text(f"{self.process.pid}\n")
        self.started = time.monotonic()

    async def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), wait)
                break
            except asyncio.TimeoutError:
                continue


class Network:
    def __init__(self) -> None:
        self.run = layout.RUN
        self.hypervisor = Hypervisor(layout.ROOTFS, self.run / "vms", on_change=self.kick)
        self.children: dict[str, Child] = {}
        self.provider_ids: dict[str, str] = {}
        self.platforms: dict[str, str] = {}
        self.ads_posted: dict[str, float] = {}
        self.payments: payments.Deployment | None = None
        self._kick = asyncio.Event()
        self._stop = asyncio.Event()
        self.ready = False
        # Set by a test that posts an advertisement of its own and needs it to stand for a while.
        self.ads_held = False
        # Providers to kill (SIGKILL) the moment they ask the hypervisor to launch a VM: a provider lost in the
        # middle of a create, at the one point that leaves the most behind (the name mapped, the launch under way).
        self.kill_on_launch: set[str] = set()
        # Held by a round of advertising: "hold-ads" returns only once the round in flight is over, so no
        # advert of that round lands after the test's own.
        self._advertising = asyncio.Lock()

    def kick(self) -> None:
        self._kick.set()

    # -- environment of each server ------------------------------------------------
    def _base_env(self, home: Path, bind_ip: str, size: dict[str, int] | None = None) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(layout.REPO / "devnet" / "hostshim"),
            "PYTHONUNBUFFERED": "1",
            "GOLEM_DEVNET_BIND_IP": bind_ip,
            "GOLEM_DEVNET_RUN": str(self.run),
        }
        host = size or layout.host_size()
        env.update({k: str(v) for k, v in {
            "GOLEM_DEVNET_HOST_CPUS": host["cpu"],
            "GOLEM_DEVNET_HOST_MEMORY_GB": host["memory"],
            "GOLEM_DEVNET_HOST_DISK_GB": host["storage"],
        }.items()})
        home.mkdir(parents=True, exist_ok=True)
        return env

    def chain_child(self) -> Child:
        home = self.run / "chains" / payments.CHAIN.name
        home.mkdir(parents=True, exist_ok=True)
        # anvil needs nothing from the environment; the marker lets `devnet down` find a stray one.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "GOLEM_DEVNET_RUN": str(self.run)}
        return Child(f"chain-{payments.CHAIN.name}", payments.CHAIN.argv(), env, home)

    def discovery_child(self) -> Child:
        home = self.run / "discovery"
        env = self._base_env(home, layout.DISCOVERY_IP)
        env.update({
            "GOLEM_DISCOVERY_HOST": layout.DISCOVERY_IP,
            "GOLEM_DISCOVERY_PORT": str(layout.DISCOVERY_PORT),
            "GOLEM_DISCOVERY_DATABASE_DIR": str(home / "db"),
            "GOLEM_DISCOVERY_RATE_LIMIT_PER_MINUTE": os.environ.get("GOLEM_DEVNET_DISCOVERY_RATE_LIMIT", "100"),
        })
        exe = layout.venv(f"discovery-{layout.DISCOVERY_VERSION}") / "bin" / "golem-discovery"
        return Child("discovery", [str(exe)], env, home)

    def provider_child(self, prov: layout.Provider) -> Child:
        home = self.run / "providers" / prov.key
        env = self._base_env(home, prov.ip, prov.size)
        closed = "http://127.0.0.1:1"  # a closed loopback port: outside services fail at once
        settings = {
            "HOST": prov.ip, "PORT": layout.PROVIDER_PORT, "PUBLIC_IP": prov.ip,
            "PROVIDER_COUNTRY": prov.country, "PROVIDER_NAME": f"devnet-{prov.key}",
            "MULTIPASS_BINARY_PATH": self.run / "bin" / "multipass",
            "ADVERTISER_TYPE": "discovery_server", "DISCOVERY_URL": layout.DISCOVERY_URL,
            "STREAM_PAYMENT_ADDRESS": layout.ZERO_ADDRESS, "GLM_TOKEN_ADDRESS": layout.ZERO_ADDRESS,
            "STREAM_MONITOR_ENABLED": "false", "STREAM_WITHDRAW_ENABLED": "false",
            "PRICING_UPDATE_ENABLED": "false", "SKIP_PORT_VERIFICATION": "true", "DEBUG": "false",
            "PORT_RANGE_START": prov.port_range[0], "PORT_RANGE_END": prov.port_range[1],
            # Not a ws:// URL: the faucet check at start-up fails at once instead of ~20 s.
            "GOLEM_BASE_WS_URL": "disabled", "GOLEM_BASE_RPC_URL": closed,
            "FAUCET_URL": closed, "CAPTCHA_URL": closed, "POLYGON_RPC_URL": closed,
            "COINGECKO_API_URL": closed,
            # Unlimited, as a real provider's is for its own requestors' polling.
            "RATE_LIMIT_PER_MINUTE": 100000,
        }
        if prov.usd:
            settings.update(zip(("PRICE_USD_PER_CORE_MONTH", "PRICE_USD_PER_GB_RAM_MONTH",
                                 "PRICE_USD_PER_GB_STORAGE_MONTH"), prov.usd))
        if prov.glm:
            settings.update(zip(("PRICE_GLM_PER_CORE_MONTH", "PRICE_GLM_PER_GB_RAM_MONTH",
                                 "PRICE_GLM_PER_GB_STORAGE_MONTH"), prov.glm))
        # The current providers take payment on the network's chain; the MVP-era one never had payments.
        # The environment is built from scratch, so no PYTEST_CURRENT_TEST reaches a provider: with it,
        # 0.1.63 silently forces STREAM_PAYMENT_ADDRESS to 0x0 (reference §7.2).
        if prov.api == "jobs" and self.payments:
            settings.update(self.payments.provider_settings())
        if prov.api == "jobs" and prov in layout.PROVIDERS:
            # The current providers run upstream's own Golem Base advertiser (devnetd still feeds central);
            # the spares keep upstream's discovery-server advertiser, so nothing of theirs outlives a test.
            settings.update(golembase_net.provider_settings())
        env.update({f"GOLEM_PROVIDER_{k}": str(v) for k, v in settings.items()})
        env["GOLEM_DEVNET_SOCKET"] = str(self.run / "multipass.sock")
        env["GOLEM_DEVNET_OWNER"] = prov.key
        # A key we hand it: its id is known before it starts (0.1.31 has no /provider/info to
        # ask; a 0.1.63 provider's Golem Base gas is paid before its first advert).
        env["GOLEM_PROVIDER_ETHEREUM_PRIVATE_KEY"] = self._provider_key(prov)
        bin_dir = layout.venv(prov.venv) / "bin"
        if prov.api == "sync":
            # 0.1.31's own `golem-provider start` crashes (an undefined logger).
            argv = [str(bin_dir / "python"), "-m", "uvicorn", "provider:app",
                    "--host", prov.ip, "--port", str(layout.PROVIDER_PORT)]
        else:
            argv = [str(bin_dir / "golem-provider"), "start", "--no-verify-port"]
        return Child(f"provider-{prov.key}", argv, env, home)

    def _provider_key(self, prov: layout.Provider) -> str:
        path = self.run / "keys" / f"{prov.key}.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("0x" + secrets.token_hex(32))
            path.chmod(0o600)
        key = path.read_text().strip()
        # The address once per key: deriving it takes a Python with eth_account (~0.5 s) per provider.
        known = path.with_suffix(".address")
        if not known.exists() or known.stat().st_mtime < path.stat().st_mtime:
            python = layout.venv(prov.venv) / "bin" / "python"
            known.write_text(subprocess.run(
                [str(python), "-c", "import sys; from eth_account import Account; "
                 "print(Account.from_key(sys.argv[1]).address)", key],
                check=True, capture_output=True, text=True).stdout)
        self.provider_ids[prov.key] = known.read_text().strip()
        return key

    # -- start-up ----------------------------------------------------------------------
    async def wait_http(self, name: str, host: str, port: int, path: str, ok=(200,)) -> Any:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        child = self.children[name]
        while time.monotonic() < deadline:
            if not child.alive:
                raise RuntimeError(f"{name} exited during start-up; see logs/{name}.log")
            try:
                status, body = await asyncio.to_thread(http_json, "GET", host, port, path, timeout=2)
                if status in ok:
                    return body
            except OSError:
                pass
            await asyncio.sleep(0.25)
        raise RuntimeError(f"{name} did not answer GET {path} within {STARTUP_TIMEOUT:.0f} s")

    async def start_provider(self, prov: layout.Provider) -> None:
        name = f"provider-{prov.key}"
        self.children[name] = child = self.provider_child(prov)
        if prov.api == "jobs" and prov in layout.PROVIDERS:
            await asyncio.to_thread(golembase_net.fund, self.provider_ids[prov.key])
        await child.start()
        if prov.api == "jobs":
            info = await self.wait_http(name, prov.ip, layout.PROVIDER_PORT, "/api/v1/provider/info")
            self.provider_ids[prov.key] = info["provider_id"]
            self.platforms[prov.key] = info.get("platform") or "x86_64"
        else:
            # The MVP API has no info endpoint; an unknown VM's 404 shows the app is serving.
            await self.wait_http(name, prov.ip, layout.PROVIDER_PORT, "/api/v1/vms/devnet-probe", ok=(404,))
        self.kick()

    async def start(self) -> None:
        for sub in ("logs", "pids", "bin", "vms"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        shim = self.run / "bin" / "multipass"
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} {layout.REPO / 'devnet' / 'multipass_cli.py'} \"$@\"\n")
        shim.chmod(0o755)
        server = await asyncio.start_unix_server(self.serve, path=str(self.run / "multipass.sock"))
        self._server = server
        chain = self.children[f"chain-{payments.CHAIN.name}"] = self.chain_child()
        await chain.start()
        self.children["discovery"] = self.discovery_child()
        await self.children["discovery"].start()
        await asyncio.gather(self.wait_http("discovery", layout.DISCOVERY_IP, layout.DISCOVERY_PORT, "/health"),
                             self.start_golem_base())
        # Before the providers: they are started with the contract's address.
        try:
            self.payments = await asyncio.to_thread(payments.setup, self.run)
        except Exception as exc:
            raise RuntimeError(f"payment chain: {exc}; see logs/{chain.name}.log") from exc
        self.children["postgres"] = pg = postgres.Postgres()
        await asyncio.gather(pg.create(), *(self.start_provider(p) for p in layout.PROVIDERS))
        self.advertiser = asyncio.get_running_loop().create_task(self.advertise_forever())
        # Up means discoverable: every provider's advertisement is in discovery.
        deadline = time.monotonic() + 30
        while len(self.ads_posted) < len(layout.PROVIDERS):
            if time.monotonic() > deadline:
                raise RuntimeError("advertisements were not accepted by discovery; see logs/devnetd.log")
            await asyncio.sleep(0.1)
        await self.wait_golem_base_adverts()
        self.ready = True
        self.write_status()

    # -- the local Golem Base (devnet/golembase_net.py) ----------------------------------
    async def start_golem_base(self) -> None:
        """anvil, then the Golem Base stand-in in front of it; each answers JSON-RPC before the next."""
        for name, argv, ip, url in golembase_net.children():
            home = self.run / name
            self.children[name] = child = Child(name, argv, self._base_env(home, ip), home)
            await child.start()
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                try:
                    await asyncio.to_thread(rpc, url, "eth_chainId", timeout=2, source_ip=layout.CONTROL_SOURCE_IP)
                    break
                except (OSError, RpcError, ValueError):
                    if not child.alive or time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer eth_chainId; see logs/{name}.log") from None
                    await asyncio.sleep(0.1)

    async def wait_golem_base_adverts(self, timeout: float = 60.0) -> None:
        """Up means discoverable on Golem Base too: the current providers' own adverts are queryable."""
        started, waiting = time.monotonic(), {p.key for p in layout.PROVIDERS if p.api == "jobs"}
        while waiting:
            for key in sorted(waiting):
                try:
                    found = await asyncio.to_thread(golembase_net.adverts, self.provider_ids[key])
                except (OSError, RpcError, ValueError) as exc:
                    print(f"golem base: {exc}", flush=True)
                    found = []
                if found:
                    waiting.discard(key)
                    since = time.monotonic() - self.children[f"provider-{key}"].started
                    print(f"golem base: advert of {key} visible {since:.1f} s after its provider started", flush=True)
            if waiting and time.monotonic() - started > timeout:
                raise RuntimeError(f"no Golem Base advert from {sorted(waiting)} within {timeout:.0f} s; "
                                   "see logs/provider-*.log and logs/golem-base.log")
            await asyncio.sleep(0.2)

    # -- advertisements ----------------------------------------------------------------
    def advertisement(self, prov: layout.Provider) -> dict[str, Any] | None:
        size = prov.size
        used = self.hypervisor.allocated(prov.key)
        free = {k: size[k] - used[k] for k in size}
        # As upstream: nothing is posted once free capacity drops below one small VM.
        if free["cpu"] < 1 or free["memory"] < 1 or free["storage"] < 10:
            return None
        ad: dict[str, Any] = {"ip_address": prov.ip, "country": prov.country, "resources": free}
        if prov.api == "jobs":
            ad["platform"] = self.platforms.get(prov.key, "x86_64")
        if prov.usd and prov.glm:
            ad["pricing"] = dict(zip(
                ("usd_per_core_month", "usd_per_gb_ram_month", "usd_per_gb_storage_month",
                 "glm_per_core_month", "glm_per_gb_ram_month", "glm_per_gb_storage_month"),
                prov.usd + prov.glm))
        return ad

    async def advertise_once(self) -> None:
        async with self._advertising:
            await self._advertise_round()

    async def _advertise_round(self) -> None:
        for prov in layout.PROVIDERS + layout.SPARE_PROVIDERS:
            if self.ads_held:
                return
            pid = self.provider_ids.get(prov.key)
            child = self.children.get(f"provider-{prov.key}")
            if not pid or child is None or not child.alive:
                continue  # a stopped provider stops advertising, as a real one would
            ad = self.advertisement(prov)
            if ad is None:
                continue
            try:
                status, body = await asyncio.to_thread(
                    http_json, "POST", layout.DISCOVERY_IP, layout.DISCOVERY_PORT, "/api/v1/advertisements",
                    ad, {"X-Provider-ID": pid, "X-Provider-Signature": "golem-devnet"}, source_ip=prov.ip)
            except OSError as exc:
                print(f"advertise {prov.key}: {exc}", flush=True)
                continue
            if status == 200:
                self.ads_posted[prov.key] = time.time()
            else:
                print(f"advertise {prov.key}: HTTP {status} {body}", flush=True)

    async def withdraw_advert(self, prov: layout.Provider) -> None:
        """A spare provider leaves central discovery as it found it; between rounds, so no round re-posts it."""
        pid = self.provider_ids.get(prov.key)
        async with self._advertising:
            self.ads_posted.pop(prov.key, None)
            if pid:
                status, body = await asyncio.to_thread(
                    http_json, "DELETE", layout.DISCOVERY_IP, layout.DISCOVERY_PORT, f"/api/v1/advertisements/{pid}",
                    None, {"X-Provider-ID": pid, "X-Provider-Signature": "golem-devnet"}, source_ip=prov.ip)
                if status not in (200, 404):
                    print(f"withdraw advert of {prov.key}: HTTP {status} {body}", flush=True)

    async def advertise_forever(self) -> None:
        while True:
            self._kick.clear()
            await self.advertise_once()
            # A round after every VM change, but not more often than this: each provider posts from its own
            # address, as a real one does, and discovery allows an address 100 requests a minute (over that it
            # answers 500, its rate-limit reply failing to serialise).
            await asyncio.sleep(MIN_ROUND_GAP)
            try:
                await asyncio.wait_for(self._kick.wait(), layout.ADVERTISE_EVERY)
            except asyncio.TimeoutError:
                pass

    # -- the socket: multipass calls and control requests ---------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.read())
            if "control" in request:
                reply = await self.control(request)
            else:
                owner, argv = request.get("owner", "default"), request.get("argv", [])
                if argv[:1] == ["launch"] and owner in self.kill_on_launch:
                    self.kill_on_launch.discard(owner)
                    await self.children[f"provider-{owner}"].stop(timeout=0)
                    self.write_status()
                # The launch goes on: the host keeps the VM its dead provider asked for.
                rc, out, err = await self.hypervisor.handle(owner, argv, request.get("cloud_init"))
                reply = {"rc": rc, "stdout": out, "stderr": err}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never kills the daemon
            reply = {"rc": 2, "stdout": "", "stderr": f"devnetd: {type(exc).__name__}: {exc}\n"}
        writer.write(json.dumps(reply).encode())
        await writer.drain()
        writer.close()

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        action = request["control"]
        if action == "status":
            return {"rc": 0, "status": self.status()}
        if action == "shutdown":
            self._stop.set()
            return {"rc": 0}
        if action == "hold-ads":
            self.ads_held = bool(request.get("hold", True))
            async with self._advertising:
                pass  # a round that was under way has ended
            if not self.ads_held:
                self.kick()
            return {"rc": 0, "status": self.status()}
        if action == "kill-on-launch":
            self.kill_on_launch.add(layout.provider_by_key(request["name"]).key)
            return {"rc": 0, "status": self.status()}
        if action in ("stop", "start"):
            # For fault tests: take one server down (it stops advertising) and bring it back.
            target = request["name"]
            if target == "postgres":
                pg = self.children["postgres"]
                await (pg.stop(timeout=float(request.get("timeout", 10))) if action == "stop" else pg.start())
            elif target == "discovery":
                child = self.children["discovery"]
                if action == "stop":
                    await child.stop(timeout=float(request.get("timeout", 10)))
                elif not child.alive:
                    await child.start()
                    await self.wait_http("discovery", layout.DISCOVERY_IP, layout.DISCOVERY_PORT, "/health")
                    self.kick()
            else:
                prov = layout.provider_by_key(target)
                child = self.children.get(f"provider-{prov.key}")
                if action == "stop" and child is not None:
                    await child.stop(timeout=float(request.get("timeout", 10)))
                    if prov in layout.SPARE_PROVIDERS:
                        await self.withdraw_advert(prov)
                elif action == "start" and (child is None or not child.alive):
                    await self.start_provider(prov)
            self.write_status()
            return {"rc": 0, "status": self.status()}
        return {"rc": 2, "stderr": f"unknown control action {action!r}\n"}

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "pid": os.getpid(),
            "run_dir": str(self.run),
            "discovery_url": layout.DISCOVERY_URL,
            "net": layout.NET,
            "control_source_ip": layout.CONTROL_SOURCE_IP,
            "providers": [self._provider_status(p) for p in layout.PROVIDERS],
            # Not in "providers": only the tests that start them know of them.
            "spare_providers": [self._provider_status(p) for p in layout.SPARE_PROVIDERS],
            "postgres": self.children["postgres"].status() if "postgres" in self.children else None,
            "discovery_alive": bool(self.children.get("discovery") and self.children["discovery"].alive),
            "payments": self.payments.status() if self.payments else None,
            "golem_base": golembase_net.status(),
            "children": {n: (c.process.pid if c.alive and c.process else None) for n, c in self.children.items()},
            "vms": {n: {"owner": i.owner, "ip": i.ip, "state": i.info()["state"]}
                    for n, i in self.hypervisor.instances.items()},
        }

    def _provider_status(self, p: layout.Provider) -> dict[str, Any]:
        child = self.children.get(f"provider-{p.key}")
        return {
            "key": p.key, "provider_id": self.provider_ids.get(p.key), "ip": p.ip,
            "url": p.url, "country": p.country, "version": p.version, "api": p.api,
            "ssh_ports": list(p.port_range),
            "payments": bool(p.api == "jobs" and self.payments),
            "alive": bool(child and child.alive),
        }

    def write_status(self) -> None:
        tmp = self.run / "status.json.tmp"
        tmp.write_text(json.dumps(self.status(), indent=2))
        tmp.replace(self.run / "status.json")

    async def shutdown(self) -> None:
        self.ready = False
        if getattr(self, "advertiser", None):
            self.advertiser.cancel()
        # Providers first, so none of them is mid-call to the hypervisor when it goes.
        await asyncio.gather(*(c.stop() for n, c in self.children.items() if n.startswith("provider")))
        await asyncio.gather(*(c.stop() for n, c in self.children.items() if not n.startswith("provider")))
        await self.hypervisor.shutdown()
        if getattr(self, "_server", None):
            self._server.close()
        (self.run / "multipass.sock").unlink(missing_ok=True)
        (self.run / "status.json").unlink(missing_ok=True)
        # It names a chain that is gone now; the key itself stays in keys/.
        (self.run / "env").unlink(missing_ok=True)


async def main() -> int:
    net = Network()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, net._stop.set)
    (layout.RUN / "pids").mkdir(parents=True, exist_ok=True)
    (layout.RUN / "pids" / "devnetd.pid").write_text(f"{os.getpid()}\n")
    code = 0
    try:
        starting = loop.create_task(net.start())
        stopping = loop.create_task(net._stop.wait())
        done, _pending = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done and starting.exception() is None:
            print("devnetd: ready", flush=True)
            await stopping
        elif starting in done:
            print(f"devnetd: start-up failed: {starting.exception()}", flush=True)
            (layout.RUN / "startup-error").write_text(str(starting.exception()))
            code = 1
        else:
            starting.cancel()
    finally:
        await net.shutdown()
        (layout.RUN / "pids" / "devnetd.pid").unlink(missing_ok=True)
        print("devnetd: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local network's Golem Base, checked with plain JSON-RPC and upstream code (no collection code).

The node is stood in (devnet/golembase_node.py in front of anvil); what is on its other side is
real: the 0.1.63 providers' own advertiser writes the adverts, the upstream CLI 0.1.58 reads
them with golem-base-sdk 0.1.0, and entities seeded here are signed storage transactions.
"""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
import time
import uuid

import pytest

from .devnet_helpers import REPO, create_body, discovery_url, http, status, wait_until
from .golem_base_helpers import GOLEM_CLI, PROVIDER_PYTHON, RpcError, golem_base, head, loopback_env, seed, upstream_cli

# The annotations upstream's GolemBaseAdvertiser writes (reference §1.2).
STRING_KEYS = {
    "golem_type", "golem_network", "golem_payments_network", "golem_provider_id", "golem_ip_address",
    "golem_country", "golem_provider_name", "golem_platform", "golem_price_currency",
    "golem_price_usd_core_month", "golem_price_usd_ram_gb_month", "golem_price_usd_storage_gb_month",
    "golem_price_glm_core_month", "golem_price_glm_ram_gb_month", "golem_price_glm_storage_gb_month",
}
NUMERIC_KEYS = {"golem_cpu", "golem_memory", "golem_storage"}
PRICES = (("usd_per_core_month", "golem_price_usd_core_month"), ("usd_per_gb_ram_month", "golem_price_usd_ram_gb_month"),
          ("usd_per_gb_storage_month", "golem_price_usd_storage_gb_month"),
          ("glm_per_core_month", "golem_price_glm_core_month"), ("glm_per_gb_ram_month", "golem_price_glm_ram_gb_month"),
          ("glm_per_gb_storage_month", "golem_price_glm_storage_gb_month"))


def _adverts_of(provider_id: str) -> list[dict]:
    return golem_base("golembase_queryEntities", f'golem_type="provider" && golem_provider_id="{provider_id}"')


def _numbers(provider_id: str) -> dict[str, int]:
    """The free capacity in a provider's Golem Base advert, named as central discovery names it."""
    meta = golem_base("golembase_getEntityMetaData", _adverts_of(provider_id)[0]["key"])
    return {a["key"].removeprefix("golem_"): a["value"] for a in meta["numericAnnotations"]}


def _central() -> dict[str, dict]:
    code, ads = http("GET", f"{discovery_url()}/api/v1/advertisements")
    assert code == 200, ads
    return {ad["provider_id"]: ad for ad in ads}


def _keys(query: str) -> set[str]:
    return {hit["key"] for hit in golem_base("golembase_queryEntities", query)}


def test_status_names_the_golem_base(devnet):
    gb = devnet["golem_base"]
    assert gb["chain_id"] == 0x6013A
    assert gb["rpc_url"] == f"http://{devnet['net']}.0.13:8545/rpc"
    assert gb["ws_url"].startswith(f"ws://{devnet['net']}.0.13:")
    assert int(golem_base("eth_chainId"), 16) == 0x6013A


def test_providers_own_adverts_carry_upstreams_annotations(providers):
    central = _central()
    for key in ("se", "us"):
        prov = providers[key]
        hits = _adverts_of(prov["provider_id"])
        assert len(hits) == 1, hits
        assert hits[0]["value"] == ""  # upstream advertises with empty data: base64 of b""
        meta = golem_base("golembase_getEntityMetaData", hits[0]["key"])
        assert meta["owner"] == prov["provider_id"].lower()  # the provider's own key signed it
        strings = {a["key"]: a["value"] for a in meta["stringAnnotations"]}
        numbers = {a["key"]: a["value"] for a in meta["numericAnnotations"]}
        assert set(strings) == STRING_KEYS and set(numbers) == NUMERIC_KEYS
        assert strings["golem_type"] == "provider" and strings["golem_network"] == "mainnet"
        assert strings["golem_payments_network"] == "l2.holesky"
        assert strings["golem_provider_id"] == prov["provider_id"]
        assert strings["golem_ip_address"] == prov["ip"] and strings["golem_country"] == prov["country"]
        assert strings["golem_provider_name"] == f"devnet-{key}" and strings["golem_platform"] == "x86_64"
        assert strings["golem_price_currency"] == "USD/GLM"
        ad = central[prov["provider_id"]]
        for central_key, annotation in PRICES:
            assert strings[annotation] == str(float(ad["pricing"][central_key]))  # floats as strings
        # Free capacity as central lists it; both follow VMs coming and going, so let them settle.
        # Every 2 s: discovery answers 500 past 100 requests a minute from one address.
        wait_until(lambda p=prov: _numbers(p["provider_id"]) == _central()[p["provider_id"]]["resources"],
                   timeout=60, interval=2, what=f"{key}'s two adverts to agree on free capacity")
        # btl = 2 x GOLEM_BASE_ADVERTISEMENT_INTERVAL blocks, refreshed before it runs out. Read again after
        # the wait above, during which the advertiser may have extended it.
        expires = golem_base("golembase_getEntityMetaData", hits[0]["key"])["expiresAtBlock"]
        assert 0 < expires - head() <= 2 * status()["golem_base"]["advertisement_interval"]
    # The MVP-era provider has no Golem Base advertiser.
    assert _adverts_of(providers["de"]["provider_id"]) == []


def test_a_vm_changes_the_providers_advert_and_freeing_it_changes_it_back(providers, ssh_key):
    """Upstream's advertiser updates its entity when capacity changes (an update transaction)."""
    se = providers["se"]

    def cpu() -> int:
        return _numbers(se["provider_id"])["cpu"]

    before = cpu()
    name = f"gb-{uuid.uuid4().hex[:8]}"
    body = {**create_body(se, name, ssh_key[1]), "resources": {"cpu": 2, "memory": 1, "storage": 10}}
    code, job = http("POST", f"{se['url']}/api/v1/vms?async=true", body)
    assert code == 202, job
    try:
        # A DELETE while the create is pending does not stop it (upstream): let it finish first.
        wait_until(lambda: http("GET", f"{se['url']}/api/v1/vms/jobs/{job['job_id']}")[1]["status"] != "creating",
                   what=f"job {job['job_id']}")
        wait_until(lambda: cpu() == before - 2, timeout=60, what="the Golem Base advert to shrink")
        assert len(_adverts_of(se["provider_id"])) == 1  # updated in place, not a second advert
    finally:
        http("DELETE", f"{se['url']}/api/v1/vms/{name}")
    wait_until(lambda: cpu() == before, timeout=60, what="the Golem Base advert to grow back")


def test_query_language():
    run = uuid.uuid4().hex[:12]
    entities = {
        "a": ([["kind", "alpha"], ["region", "eu"], ["num_as_text", "5"]], [["cpu", 4], ["mem", 8]]),
        "b": ([["kind", "beta"], ["region", "us"], ["quote", 'say "hi"']], [["cpu", 16], ["mem", 32]]),
        "c": ([["kind", "alpha"], ["region", "us"]], [["cpu", 1]]),
        "d": ([["kind", "gamma"]], []),
    }
    creates = [{"btl": 300, "strings": [["t_run", run], ["name", n], *s], "numbers": n_} for n, (s, n_) in entities.items()]
    [receipt] = seed({"creates": creates})
    key = {name: created["key"] for name, created in zip(entities, receipt["created"])}
    scope = f't_run="{run}"'

    def names(query: str) -> set[str]:
        found = _keys(f"{scope} && ({query})")
        return {n for n, k in key.items() if k in found}

    assert names('kind="alpha"') == {"a", "c"}
    assert names('kind!="alpha"') == {"b", "d"}
    assert names("cpu=4") == {"a"}
    assert names("cpu!=4") == {"b", "c"}  # d has no cpu: no comparison matches it, != included
    assert names("cpu<4") == {"c"} and names("cpu<=4") == {"a", "c"}
    assert names("cpu>4") == {"b"} and names("cpu>=4") == {"a", "b"}
    assert names('kind="alpha" && cpu>=4') == {"a"}
    assert names('kind="gamma" || mem>=32') == {"b", "d"}
    # && binds tighter than ||; parentheses override it.
    assert names('kind="gamma" || region="us" && cpu>=16') == {"b", "d"}
    assert names('(kind="gamma" || region="us") && cpu>=1') == {"b", "c"}
    assert names('((kind="alpha") && (region="eu" || region="us")) && mem<10') == {"a"}
    # The literal's type picks the annotation: a number never matches a string annotation.
    assert names("num_as_text=5") == set() and names('num_as_text="5"') == {"a"}
    assert names(r'quote="say \"hi\""') == {"b"}
    assert names('kind = "beta"') == {"b"}  # whitespace is free
    for bad in ('kind="alpha" &&', "cpu>=x", "(cpu=1", 'kind="alpha" kind="beta"', "cpu>=-1"):
        with pytest.raises(RpcError, match="failed to parse query"):
            golem_base("golembase_queryEntities", bad)


def test_entity_keys_are_derived_as_the_node_derives_them():
    [receipt] = seed({"creates": [{"btl": 50, "data": "payload-0"}, {"btl": 50, "data": "payload-1"}]})
    derive = ("import sys; from eth_utils import keccak; tx = bytes.fromhex(sys.argv[1][2:]); "
              "print(*('0x' + keccak(tx + f'payload-{i}'.encode() + i.to_bytes(32, 'big')).hex() for i in (0, 1)))")
    expected = subprocess.run([str(PROVIDER_PYTHON), "-c", derive, receipt["tx_hash"]], capture_output=True,
                              text=True, check=True).stdout.split()
    assert [c["key"] for c in receipt["created"]] == expected
    assert all(c["expiresAtBlock"] == receipt["block"] + 50 for c in receipt["created"])


def test_an_entity_past_its_expiry_is_not_returned():
    """Watched block by block in real time (mining ahead would age the providers' adverts too).

    20 blocks of life (20 s): the seed's process exits and the first query comes well within them on a busy
    machine, so the entity is always seen alive first."""
    run = uuid.uuid4().hex[:12]
    [receipt] = seed({"creates": [{"btl": 20, "strings": [["t_run", run]]}]})
    [created] = receipt["created"]
    expires = created["expiresAtBlock"]
    assert expires == receipt["block"] + 20
    assert golem_base("golembase_getEntityMetaData", created["key"])["expiresAtBlock"] == expires
    seen_alive = False
    while True:
        before = head()
        found = _keys(f't_run="{run}"')
        after = head()
        if found:
            assert found == {created["key"]}
            assert before < expires, f"returned at block {before} though it expired at {expires}"
            seen_alive = True
        else:
            assert after >= expires, f"gone at block {after} though it expires at {expires}"
            break
        time.sleep(0.2)
    assert seen_alive
    with pytest.raises(RpcError, match="not found"):
        golem_base("golembase_getEntityMetaData", created["key"])
    assert created["key"] not in golem_base("golembase_getAllEntityKeys")
    assert golem_base("golembase_getEntityCount") == len(golem_base("golembase_getAllEntityKeys"))


def test_a_malformed_advert_is_stored_and_returned_as_sent(tmp_path):
    """The node stores whatever a valid storage transaction carries; judging adverts is the reader's job."""
    run = uuid.uuid4().hex[:12]
    strings = [["t_run", run], ["golem_type", "provider"], ["golem_network", "mainnet"],
               ["golem_payments_network", "l2.holesky"], ["golem_provider_id", "0x" + "11" * 20],
               ["golem_cpu", "lots"], ["golem_ip_address", "999.1.1.1"], ["golem_country", {"hex": "ff53"}]]
    numbers = [["golem_memory", 2 ** 64 - 1], ["golem_storage", 0]]
    [receipt] = seed({"creates": [{"btl": 200, "data": {"hex": "00ff"}, "strings": strings, "numbers": numbers}]})
    [created] = receipt["created"]
    try:
        [hit] = golem_base("golembase_queryEntities", f't_run="{run}"')
        assert hit == {"key": created["key"], "value": base64.b64encode(b"\x00\xff").decode()}
        meta = golem_base("golembase_getEntityMetaData", created["key"])
        # Invalid UTF-8 reads back as U+FFFD, as Go's JSON encoder writes it.
        expected = [[k, "\ufffdS" if isinstance(v, dict) else v] for k, v in strings]
        assert [[a["key"], a["value"]] for a in meta["stringAnnotations"]] == expected
        assert [[a["key"], a["value"]] for a in meta["numericAnnotations"]] == numbers
        assert meta["owner"] == receipt["sender"].lower()
        # Upstream's CLI reads every advert and converts golem_cpu with int(): one bad advert fails the whole list.
        listing = upstream_cli(tmp_path, "vm", "providers")
        assert listing.returncode == 1
        assert "invalid literal for int() with base 10: 'lots'" in listing.stdout + listing.stderr
    finally:
        seed({"deletes": [created["key"]]})
    assert golem_base("golembase_queryEntities", f't_run="{run}"') == []


def test_transactions_the_node_would_fail_change_nothing():
    run = uuid.uuid4().hex[:12]
    [mine] = seed({"creates": [{"btl": 100, "strings": [["t_run", run]]}]})
    entity = mine["created"][0]["key"]
    missing = "0x" + "ab" * 32
    # Estimating runs the transaction: an update of no entity is refused before it is sent.
    with pytest.raises(AssertionError, match="entity not found"):
        seed({"updates": [{"entity": missing, "btl": 10}]})
    # Sent anyway (gas given): mined, but failed as a whole; the create beside it did not happen.
    [failed] = seed({"creates": [{"btl": 10, "strings": [["t_run", run]]}],
                     "updates": [{"entity": missing, "btl": 10}], "gas": 200000})
    assert failed["status"] == 0 and failed["logs"] == []
    # Only the owner may delete; anvil's second development account is someone else.
    other = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
    [foreign] = seed({"key": other, "deletes": [entity], "gas": 200000})
    assert foreign["status"] == 0
    assert _keys(f't_run="{run}"') == {entity}
    # Invalid annotation names, a zero BTL and data that is not a storage transaction fail, as on the node.
    for bad in ({"creates": [{"btl": 10, "strings": [["golem-cpu", "1"]]}]}, {"creates": [{"btl": 0}]},
                {"raw": "0xdeadbeef"}):
        [refused] = seed({**bad, "gas": 200000})
        assert refused["status"] == 0
    # No data at all is refused when submitted.
    with pytest.raises(AssertionError, match="storage transaction has no data"):
        seed({"raw": "0x", "gas": 100000})
    assert _keys(f't_run="{run}"') == {entity}


_SDK_SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from golem_base_sdk import GenericBytes, GolemBaseROClient
from golembase_seed import send_all

async def main(url, ws_url, run):
    client = await GolemBaseROClient.create_ro_client(url, ws_url)
    result = {}
    try:
%s
    finally:
        await client.disconnect()
    print(json.dumps(result))

asyncio.run(main(*sys.argv[2:]))
"""


def _run_sdk(tmp_path, body: str) -> dict:
    """Runs ``body`` (the inside of an async function with ``client``, ``url``, ``run`` and ``send_all``)
    under the provider's virtualenv, with golem-base-sdk 0.1.0 connected to the network's Golem Base;
    returns what it put in ``result``."""
    script = tmp_path / "sdk.py"
    script.write_text(_SDK_SCRIPT % textwrap.indent(textwrap.dedent(body).strip(), " " * 8))
    gb = status()["golem_base"]
    result = subprocess.run([str(PROVIDER_PYTHON), str(script), str(REPO / "devnet"), gb["rpc_url"], gb["ws_url"],
                             uuid.uuid4().hex[:12]], capture_output=True, text=True, timeout=120,
                            env=loopback_env(tmp_path), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_sdks_reads_decode_the_stand_ins_answers(tmp_path):
    """Every read golem-base-sdk 0.1.0 has, on an entity seeded with a signed transaction."""
    out = _run_sdk(tmp_path, """
        [made] = await asyncio.to_thread(send_all, url, [{"creates": [
            {"btl": 40, "data": "hello", "strings": [["t_run", run]], "numbers": [["n", 7]]}]}])
        created = made["created"][0]
        key = GenericBytes.from_hex_string(created["key"])
        meta = await client.get_entity_metadata(key)
        result.update(made=made, run=run, value=(await client.get_storage_value(key)).decode(),
                      owner=meta.owner.as_hex_string(), expires=meta.expires_at_block,
                      strings=[[a.key, a.value] for a in meta.string_annotations],
                      numbers=[[a.key, a.value] for a in meta.numeric_annotations],
                      query=[[r.entity_key, r.storage_value.decode()]
                             for r in await client.query_entities(f't_run="{run}" && n>=7')],
                      count=await client.get_entity_count(),
                      all=[k.as_hex_string() for k in await client.get_all_entity_keys()],
                      owned=[k.as_hex_string() for k in await client.get_entities_of_owner(made["sender"])],
                      expiring=[k.as_hex_string()
                                for k in await client.get_entities_to_expire_at_block(created["expiresAtBlock"])])
    """)
    made = out["made"]
    key = made["created"][0]["key"]
    assert out["value"] == "hello" and out["owner"] == made["sender"].lower()
    assert out["expires"] == made["created"][0]["expiresAtBlock"] == made["block"] + 40
    assert out["strings"] == [["t_run", out["run"]]] and out["numbers"] == [["n", 7]]
    assert out["query"] == [[key, "hello"]]
    assert key in out["all"] and out["count"] == len(out["all"])
    assert key in out["owned"] and key in out["expiring"]


def test_the_sdk_watches_the_nodes_events_over_websocket(tmp_path):
    """golem-base-sdk's watch_logs subscribes over the WebSocket; a create, an extend and a delete reach it."""
    out = _run_sdk(tmp_path, """
        seen = []
        handle = await client.watch_logs(
            label="t", create_callback=lambda c: seen.append(["create", c.entity_key.as_hex_string()]),
            extend_callback=lambda e: seen.append(["extend", e.new_expiration_block - e.old_expiration_block]),
            delete_callback=lambda k: seen.append(["delete", k.as_hex_string()]))
        [made] = await asyncio.to_thread(send_all, url, [{"creates": [{"btl": 300}]}])
        key = made["created"][0]["key"]
        await asyncio.to_thread(send_all, url, [{"extends": [[key, 7]]}, {"deletes": [key]}])
        for _ in range(600):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.1)
        await handle.unsubscribe()
        result.update(key=key, seen=seen)
    """)
    assert out["seen"] == [["create", out["key"]], ["extend", 7], ["delete", out["key"]]]


def _cli_providers(tmp_path, *args: str) -> dict[str, dict]:
    result = upstream_cli(tmp_path, "vm", "providers", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {p["provider_id"]: p for p in json.loads(result.stdout)["providers"]}


def test_upstream_cli_lists_se_and_us_as_central_does(providers, tmp_path):
    se, us, de = (providers[k]["provider_id"] for k in ("se", "us", "de"))

    def agree() -> bool:
        listed, central = _cli_providers(tmp_path), _central()
        if set(listed) != {se, us}:
            return False
        for pid, prov in listed.items():
            ad = central[pid]
            assert (prov["country"], prov["ip_address"], prov["platform"]) == (ad["country"], ad["ip_address"], "x86_64")
            assert prov["pricing"] == ad["pricing"]
            if prov["resources"] != ad["resources"]:
                return False  # a VM of another test came or went between the two reads
        return True

    wait_until(agree, timeout=90, interval=2, what="the CLI (Golem Base) and central discovery to agree")
    assert de not in _cli_providers(tmp_path)
    assert set(_cli_providers(tmp_path, "--country", "SE")) == {se}
    assert set(_cli_providers(tmp_path, "--cpu", "4", "--country", "US")) == {us}
    assert set(_cli_providers(tmp_path, "--cpu", "4", "--memory", "2", "--storage", "20")) == {se, us}
    assert _cli_providers(tmp_path, "--cpu", "100000") == {}


def test_the_cli_environment_reaches_loopback_only(tmp_path):
    """The CLI's own Python, in the CLI's environment, cannot open a connection to upstream's public discovery."""
    probe = "import socket; socket.create_connection(('195.201.39.101', 9001), timeout=2)"
    result = subprocess.run([str(GOLEM_CLI.parent / "python"), "-c", probe], env=loopback_env(tmp_path), capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "golem devnet allows loopback only" in result.stderr

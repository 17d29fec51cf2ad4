# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection and discovery options shared by the golem.vm modules (group/golem.vm.golem); their argument spec is
module_utils/arguments.py's CONNECTION_ARGUMENTS."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  discovery_backend:
    description:
      - Where providers are found.
      - V(golem_base) reads the advertisements providers write on Golem Base, the on-chain store upstream's
        C(golem) CLI reads by default, from O(golem_base_rpc_url). A lookup costs two HTTP requests, needs no
        key and sends no transaction.
      - V(central) asks the central discovery service at O(discovery_url). Providers of the MVP era (no
        payments, no C(/api/v1/provider/info)) advertise only there.
      - Both give the same providers, prices and free resources for the same advertisements.
      - Whatever the backend, the central discovery service is asked to vouch for the address of an MVP-era
        provider before its "no such VM" answer is believed, because only it knows such providers.
      - V(golem-base), the upstream CLI's spelling, is the same as V(golem_base), here and in the variable.
      - If not set, the value of the E(GOLEM_REQUESTOR_DISCOVERY_DRIVER) environment variable is used.
      - Set it once for every module with C(module_defaults) for C(group/golem.vm.golem).
    type: str
    choices: [golem_base, golem-base, central]
    default: golem_base
  golem_base_rpc_url:
    description:
      - JSON-RPC URL (HTTP) of the Golem Base node read when O(discovery_backend=golem_base).
      - If not set, the value of the E(GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL) environment variable is used.
      - The default is the node upstream's CLI reads.
    type: str
    default: https://ethwarsaw.holesky.golemdb.io/rpc
  network:
    description:
      - Only providers advertising on this Golem network, as upstream's C(golem --network). Used by
        O(discovery_backend=golem_base); central discovery does not know networks.
      - If not set, the value of the E(GOLEM_REQUESTOR_NETWORK) environment variable is used.
    type: str
    choices: [development, testnet, mainnet]
    default: mainnet
  payments_network:
    description:
      - Only providers that take payment on this payments network, as upstream's C(golem vm providers
        --payments-network). Used by O(discovery_backend=golem_base).
      - Letters, digits, V(.), V(:), V(_) and V(-) only.
      - If not set, the value of the E(GOLEM_REQUESTOR_PAYMENTS_NETWORK) environment variable is used.
    type: str
    default: l2.holesky
  all_payments_networks:
    description:
      - List providers whatever payments network they take payment on; O(payments_network) is then
        ignored. As upstream's C(golem vm providers --all-payments).
    type: bool
    default: false
  discovery_url:
    description:
      - Base URL of the central VM on Golem discovery service, without the C(/api/v1) path.
      - Asked for providers when O(discovery_backend=central), and to vouch for MVP-era providers.
      - Must be an V(http) or V(https) URL with a host name.
      - If not set, the value of the E(GOLEM_REQUESTOR_DISCOVERY_URL) environment variable is used,
        the same variable the upstream C(golem) CLI reads. An empty variable counts as not set, for this and for
        every E(GOLEM_REQUESTOR_*) variable below.
    type: str
    default: http://195.201.39.101:9001
  provider_port:
    description:
      - TCP port of the provider REST API. Providers are reached at C(http://<ip_address>:<provider_port>).
      - Upstream providers and the C(golem) CLI use V(7466); change it only for providers you run yourself.
      - If not set, the value of the E(GOLEM_REQUESTOR_PROVIDER_PORT) environment variable is used.
    type: int
    default: 7466
  timeout:
    description:
      - Seconds to wait for each HTTP request to connect and to answer in full, however slowly the answer comes.
      - An answer larger than 16 MiB is refused (reading stops there), JSON nested deeper than 64 levels is
        refused, and a redirect is followed only for a GET (never from https to plain http), whatever server
        sends it.
      - Requests that can safely be repeated (every method but POST) are retried up to three times on
        connection errors, on HTTP 429, 502, 503 and 504, and on answers that break off or are not JSON,
        so one call may take longer than this.
      - If not set, the value of the E(GOLEM_REQUESTOR_TIMEOUT) environment variable is used.
    type: float
    default: 30.0
  validate_certs:
    description:
      - Whether to verify TLS certificates of V(https) URLs.
      - Set to V(false) only for a server you trust, for example one with a self-signed certificate.
        V(false) holds even when E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is set.
      - To trust a private certificate authority with verification on, set E(REQUESTS_CA_BUNDLE) to its PEM bundle.
      - If not set, the value of the E(GOLEM_REQUESTOR_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
"""

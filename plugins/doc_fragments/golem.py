# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by the golem.vm modules."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  discovery_url:
    description:
      - Base URL of the central VM on Golem discovery service, without the C(/api/v1) path.
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
      - Seconds to wait for each HTTP request to connect and to answer.
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

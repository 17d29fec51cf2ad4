# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payment options: the account that pays providers and the chain it pays on."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ethereum_private_key:
    description:
      - Private key (64 hexadecimal digits, with or without V(0x)) of the account that pays providers with payment
        streams on chain, as upstream's C(golem) CLI pays them. The key stays on the controller; it signs
        transactions and is never sent anywhere, shown in output, written to the state file or put in a diff.
      - Needed only to pay, that is to create a VM on a provider that requires payment when no stream id is given,
        and to terminate the stream of such a VM when it is destroyed or stopped. A VM with a stream the collection
        opened is not destroyed or stopped without it, so its deposit is never left locked.
      - If not set, the value of the E(GOLEM_REQUESTOR_ETHEREUM_PRIVATE_KEY) environment variable is used, as the
        upstream CLI reads it.
    type: str
  payments_rpc_url:
    description:
      - JSON-RPC URL of the chain the providers are paid on (the 0.1.x network pays on L2 Holesky).
      - If not set, the value of E(GOLEM_REQUESTOR_POLYGON_RPC_URL) or E(GOLEM_REQUESTOR_L2_RPC_URL) is used, the
        names upstream's CLI reads.
      - A provider's StreamPayment contract address comes from its C(GET /api/v1/provider/info); a contract that
        has no code at this URL means the URL serves another chain, and the task fails saying so.
    type: str
    default: https://l2.holesky.golemdb.io/rpc
  payments_chain_id:
    description:
      - The chain id O(payments_rpc_url) must serve; when set, any other chain is refused before a transaction is
        signed.
    type: int
notes:
  - Streams are paid in native ETH at the rate upstream's CLI computes from the provider's advertised GLM prices
    (the GLM price is paid 1:1 on the 0.1.x network), to the wei.
"""

# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payment options: the account that pays providers and the chain it pays on; their argument spec is
module_utils/arguments.py's PAYMENT_ARGUMENTS."""

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
      - When not set, the chain the node serves must fit O(payments_network). A chain of real money (Ethereum,
        Polygon, Arbitrum, Base, ...) is refused for V(l2.holesky), which pays with test money. Upstream documents
        no chain id for V(l2.holesky), so the first one payments are made on is recorded on the state's rows (config
        C(stream_chain_id)), and a node serving another chain is refused while such a row exists.
    type: int
  stream_payment_address:
    description:
      - The StreamPayment contract streams are opened in. M(golem.vm.golem_vm) and M(golem.vm.golem_fleet) refuse,
        before paying, a provider whose C(GET /api/v1/provider/info) names another contract.
      - When not set, the contract upstream documents for O(payments_network) is expected (for V(l2.holesky),
        V(0x0281B792b5491E3548c8Fc17C24A2e0Cb99FbeC2)); a payments network upstream documents none for needs this
        option to pay.
      - For M(golem.vm.golem_stream), the contract the stream given by O(golem.vm.golem_stream#module:stream_id) is
        on. Not needed for a stream the collection opened (its row records the contract) or when the provider can
        be asked (the VM's provider, or O(golem.vm.golem_stream#module:provider_ip)). When given for a VM whose row
        records a contract, the two must match.
      - If not set, the value of E(GOLEM_REQUESTOR_STREAM_PAYMENT_ADDRESS) is used, the name upstream's CLI reads.
    type: str
  max_fee_per_gas_gwei:
    description:
      - The most a transaction may pay a gas, in gwei. The collection signs a fee of up to twice the latest
        block's base fee plus the priority fee the node asks (C(eth_maxPriorityFeePerGas)); a node asking more is
        refused with the figures, before anything is signed.
      - The default lets a congested test chain through (they charge about 1 gwei) and refuses a node asking
        thousands, which is a lie or the wrong chain; at the about 200,000 gas a stream takes, 100 gwei is at most
        0.02 ETH.
      - If not set, the value of E(GOLEM_REQUESTOR_MAX_FEE_PER_GAS_GWEI) is used.
    type: float
    default: 100
notes:
  - A stream is paid exactly once. Its transaction is signed, its hash recorded on the VM's row, and only then
    sent. When the node's answer is lost (a timeout, a reset, a gateway's error), the transaction is looked up by
    its hash, and sent again as the same transaction, within O(wait_timeout); the create goes on with the stream
    it opened and never fails over to another provider. If it cannot be confirmed, the task fails and the row
    keeps the hash; the next run settles it, and finishes the VM with that stream rather than opening another.
  - Streams are paid in native ETH at the rate upstream's CLI computes from the provider's advertised GLM prices
    (the GLM price is paid 1:1 on the 0.1.x network), to the wei.
"""

# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of a VM's shape, its SSH key and the files where it is recorded, shared by golem_vm and golem_fleet;
their argument spec is module_utils/arguments.py's VM_SPEC_ARGUMENTS (with VM_SPEC_EXCLUSIVE)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  cpu:
    description: CPU cores, one of V(1), V(2), V(4), V(8), V(16). Values not given come from V(small).
    type: int
  memory:
    description: Memory in GB, one of V(1), V(2), V(4), V(8), V(16), V(32), V(64).
    type: int
  storage:
    description: Storage in GB, at least V(10).
    type: int
  image:
    description:
      - The image the provider boots, passed through as given. Creation only.
      - When not given, V(24.04), upstream's default.
    type: str
  stream_id:
    description:
      - Id of a payment stream opened elsewhere (for example with C(golem vm stream open)), passed to the provider
        as it is. The collection does not terminate a stream it did not open.
      - When not given and the chosen provider requires payment (a non-zero C(stream_payment_address) in its
        C(GET /api/v1/provider/info)), the collection opens a stream to that provider for O(payment_hours) with
        O(ethereum_private_key), and records its id in the state file (config C(stream_id), where the upstream
        CLI keeps it). If the create fails, that stream is terminated before the next provider is tried.
    type: int
  payment_hours:
    description:
      - Hours of runway the deposit of a stream the collection opens pays for (the upstream CLI's C(--hours)).
      - Top it up later with M(golem.vm.golem_stream).
    type: int
    default: 1
  max_glm_per_month:
    description:
      - The most one VM may cost a month, in GLM, at its provider's advertised GLM prices for the asked size
        (cores, GB memory and GB storage times their monthly GLM prices). A provider that takes payment is paid
        this price, 1:1 in native ETH on the 0.1.x network, from O(ethereum_private_key).
      - When the module picks the provider, providers whose adverts ask more are skipped with a warning naming
        the provider, its price and the cap; they are never contacted. A provider M(golem.vm.golem_vm) is given
        (O(golem.vm.golem_vm#module:provider_id) or O(golem.vm.golem_vm#module:provider_ip)) that asks more is
        refused before any call to it, and the task fails naming the price and the cap. No payment stream dearer than this is ever opened.
      - Providers that advertise no GLM prices (those of the MVP era, which take no payment) are not affected.
      - The default, V(500), is above what the largest named size (V(xlarge)) costs at the prices providers of
        the 0.1.x network advertise by default (about 460 GLM a month), and far below a mispriced or hostile
        advert (thousands of GLM a unit); one hour of it deposits under 0.7 ETH. Raise it to rent larger VMs
        or dearer providers. There is no way to switch it off; give a large number instead.
      - Check mode shows what a new VM would pay (the bill) before anything is signed or sent.
      - If not set, the value of the E(GOLEM_REQUESTOR_MAX_GLM_PER_MONTH) environment variable is used.
    type: float
    default: 500.0
    version_added: 0.3.0
  labels:
    description:
      - Labels of the VM, names to text (numbers and booleans are taken as their text), stored with its row in
        the state (the upstream C(golem) CLI ignores them). Names are letters, digits, V(.), V(_), V(/) and V(-),
        starting with a letter or digit, at most 63 characters.
      - Given for an existing VM, they replace its labels (a change, shown in the diff); not given, the VM's
        labels are left as they are.
      - The C(golem.vm.golem) inventory shows them as C(golem_labels), for O(golem.vm.golem#inventory:keyed_groups)
        and filters.
    type: dict
  ssh_public_key:
    description:
      - The public key to install for O(ssh_user), as the text of a C(.pub) file.
      - Upstream accepts only C(ssh-rsa) and C(ssh-ed25519) keys. Creation only.
      - Mutually exclusive with O(ssh_public_key_path). When neither is given, the collection's own ed25519 key
        pair is used, generated on first use as C(ssh/golem_id_ed25519) beside the state file.
    type: str
  ssh_public_key_path:
    description:
      - Path of the public key file to install.
    type: path
  ssh_private_key_path:
    description:
      - The private key that matches the public key, returned for connecting (the C(ssh_command) in the
        result, the inventory plugin). It is never sent anywhere.
      - When neither O(ssh_public_key) nor O(ssh_public_key_path) is given, the key to install is the
        C(.pub) file beside it, or else the public half derived from it (an OpenSSH or PEM key without a
        passphrase), as with a credential that holds only a private key (AWX).
      - Defaults to O(ssh_public_key_path) without its C(.pub) suffix when that file exists, or to the
        collection's own private key.
      - When neither this nor O(ssh_public_key) nor O(ssh_public_key_path) is given, the value of the
        E(GOLEM_REQUESTOR_SSH_PRIVATE_KEY_PATH) environment variable is used (an AWX credential sets it).
    type: path
  ssh_user:
    description:
      - The user to log in as. Upstream's cloud-init installs the key for V(root).
    type: str
    default: root
  allow_foreign_ssh_host:
    description:
      - Accept an SSH host that a provider names for a new VM although it is not the provider's own address
        (the address its API answered on, or a host name resolving to it, which is recorded as that address).
        Upstream providers answer their own address, or V(localhost) for it, which counts as their own.
      - By default such a VM is refused, so a provider cannot point Ansible, with your key, at another machine.
        The VM stays recorded with status V(error) and no SSH endpoint, so O(golem.vm.golem_vm#module:state=absent)
        deletes it (and ends its payment stream).
      - Whatever this says, a host that is not an IP address or an RFC 1123 host name, or a port outside 1 to
        65535, is always refused.
    type: bool
    default: false
    version_added: 0.3.0
  state_path:
    description:
      - The state file (SQLite) where VMs are recorded, in the upstream C(golem) CLI's format.
      - If not set, the value of the E(GOLEM_REQUESTOR_DB_PATH) environment variable is used,
        else C(~/.golem/requestor/vms.db), the CLI's own file. An empty variable counts as not set.
      - The upstream C(golem) CLI (0.1.58) always reads C(~/.golem/requestor/vms.db) of its user and ignores
        E(GOLEM_REQUESTOR_DB_PATH); VMs recorded in any other file are not in its C(golem vm list).
      - Created with mode 0600 in a directory with mode 0700.
      - Checked before anything is read or written; a directory, a file that is not an SQLite database, or a path
        under a file fails naming the option, and the file is left unchanged.
    type: path
  state_url:
    description:
      - A C(postgresql://) URL of a state shared by a team (several controllers, AWX jobs on several nodes), for
        example V(postgresql://golem@db.example:5432/golem?sslmode=require), instead of the SQLite O(state_path).
        The tables are created and migrated by the collection.
      - Two runs that create the same name at once create one VM; the name is locked across the create call.
      - The password comes from the URL, E(PGPASSWORD) or a passfile, as libpq reads them; it is never shown
        (messages name C(user@host:port/dbname)). C(sslmode) and the other libpq parameters pass through.
      - Needs psycopg 3 on the controller (C(pip install "psycopg[binary]")). The key pair, known_hosts and
        payment lock of this controller stay in C(~/.golem/requestor); the VMs' host keys are recorded in the
        state too, so another controller checks them strictly.
      - If not set, the value of E(GOLEM_REQUESTOR_STATE_URL) is used. Mutually exclusive with O(state_path).
    type: str
  known_hosts_path:
    description:
      - The known_hosts file where VM host keys are recorded.
      - If not set, the value of the E(GOLEM_REQUESTOR_KNOWN_HOSTS_PATH) environment variable is used, else
        C(known_hosts) beside the state file. The C(golem.vm.golem) inventory reads the same variable, so host keys
        are checked where they are recorded; set the option in both places, or the variable once.
      - E(GOLEM_INVENTORY_KNOWN_HOSTS_PATH), which only the inventory used to read, is refused with a message unless
        E(GOLEM_REQUESTOR_KNOWN_HOSTS_PATH) names the same file.
    type: path
"""

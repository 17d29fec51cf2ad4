# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a VM costs on a paying provider, in wei, as the 0.1.x network computes it.

Pure arithmetic, no chain: golem_provider_info shows these terms and golem_vm pays them. The
formula and its float steps are upstream's CLI's own (requestor 0.1.58: the monthly GLM price
rounded to 8 places, per second over a 730-hour month, times 10**18, truncated), so a stream we
open is the one the CLI would open, to the wei. The GLM price is paid 1:1 in native ETH on 0.1.x.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import PaymentError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec

ZERO_ADDRESS = "0x" + "0" * 40
SECONDS_PER_MONTH = 730.0 * 3600.0
_GLM_KEYS = ("glm_per_core_month", "glm_per_gb_ram_month", "glm_per_gb_storage_month")
# The price cap a user who never set max_glm_per_month gets: above what the largest named size (xlarge:
# 8 CPU, 16 GB, 80 GB) costs at the prices the 0.1.x network's providers advertise by default (~460 GLM),
# far below a mispriced or hostile advert (thousands of GLM a unit), and one hour of it deposits under 0.7 ETH.
DEFAULT_MAX_GLM_PER_MONTH = 500.0


class StreamTerms(NamedTuple):
    glm_per_month: float
    rate_wei: int  # wei a second
    deposit_wei: int  # for the asked hours

    def per_hour(self) -> int:
        return self.rate_wei * 3600


def succeeded(receipt: dict[str, Any]) -> bool:
    """Whether a mined transaction's receipt says it succeeded (a revert is status 0)."""
    status = receipt.get("status", "0x1")
    try:
        return int(status, 16) == 1
    except (TypeError, ValueError):
        raise PaymentError(f"the payments node sent a receipt whose status is {str(status)[:40]!r}, not 0x0 or 0x1; "
                           "is payments_rpc_url an Ethereum RPC endpoint?") from None


def requires_payment(stream_payment_address: str | None) -> bool:
    """A provider takes payment when its StreamPayment address (GET /provider/info) is set and not zero."""
    return bool(stream_payment_address) and int(stream_payment_address, 16) != 0


def glm_per_month(pricing: Mapping[str, Any] | None, spec: ResourceSpec) -> float | None:
    """The monthly GLM price of ``spec``, rounded as upstream rounds it; None without GLM prices."""
    if not pricing or any(pricing.get(k) is None for k in _GLM_KEYS):
        return None
    core, ram, storage = (float(pricing[k]) for k in _GLM_KEYS)
    return round(core * spec.cpu + ram * spec.memory + storage * spec.storage, 8)


def glm_per_month_of(rate_wei: int) -> float:
    """What a stream paying ``rate_wei`` a second costs a month in GLM (paid 1:1 in native ETH on 0.1.x), rounded as
    an advert's price is, so a stream opened at a price within a cap is within it here too."""
    return round(rate_wei * SECONDS_PER_MONTH / 10 ** 18, 8)


def stream_terms(pricing: Mapping[str, Any] | None, spec: ResourceSpec, hours: int) -> StreamTerms | None:
    """Rate and deposit of a stream paying ``spec`` for ``hours``; None when the advert has no GLM prices."""
    monthly = glm_per_month(pricing, spec)
    if monthly is None:
        return None
    rate = int(monthly / SECONDS_PER_MONTH * 10 ** 18)
    return StreamTerms(monthly, rate, rate * hours * 3600)


def over_cap(pricing: Mapping[str, Any] | None, spec: ResourceSpec, cap: float | None) -> str | None:
    """Why renting ``spec`` at an advert's GLM prices breaks ``cap`` (GLM a month), or None when it does not.

    Adverts without GLM prices (the MVP era's providers, which take no payment) are never over it.
    """
    monthly = glm_per_month(pricing, spec)
    if cap is None or monthly is None or monthly <= cap:
        return None
    return (f"it asks {monthly:g} GLM a month for {spec.cpu} CPU, {spec.memory} GB RAM and {spec.storage} GB disk, "
            f"over max_glm_per_month {cap:g}")


def bill_of(terms: StreamTerms, hours: int, provider_id: str | None, contract: str | None) -> dict[str, Any]:
    """What a create pays, as check mode shows it."""
    return {"provider_id": provider_id, "glm_per_month": terms.glm_per_month, "rate_wei_per_second": terms.rate_wei,
            "payment_hours": hours, "deposit_wei": terms.deposit_wei, "stream_payment_address": contract}


def check_cap(cap: Any, field: str = "max_glm_per_month") -> float | None:
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not math.isfinite(cap) or cap < 0:
        raise ValidationError(f"{field} {cap!r} must be a number of GLM of at least 0", field=field, value=cap)
    return float(cap)


def check_hours(hours: Any, field: str = "payment_hours") -> int:
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24 * 366:
        raise ValidationError(f"{field} {hours!r} must be a whole number of hours from 1 to {24 * 366}",
                              field=field, value=hours)
    return hours

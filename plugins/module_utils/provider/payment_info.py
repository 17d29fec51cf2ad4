# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""golem_provider_info's payment terms: each listed provider's ``GET /api/v1/provider/info``, in parallel.

Discovery's advertisements do not say whether a provider takes payment; only the provider does.
So each listed provider is asked once, all at the same time, within one short budget: a slow or
dead provider costs the budget once, not once per provider, and never fails the task (its terms
are null, with a warning). An MVP-era provider has no such route (HTTP 404): it takes no payment.
A server that answers as another provider is not believed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.chain.terms import requires_payment, stream_terms
from ansible_collections.golem.vm.plugins.module_utils.foundation.deadline import Deadline
from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import GolemError, ValidationError
from ansible_collections.golem.vm.plugins.module_utils.foundation.resources import ResourceSpec
from ansible_collections.golem.vm.plugins.module_utils.provider.client import ProviderClient

CONCURRENCY = 16


def check_terms_timeout(seconds: float) -> None:
    if not 0 < seconds < 3600:  # NaN and infinity fail too
        raise ValidationError(f"payment_terms_timeout {seconds:g} must be more than 0 and less than 3600 seconds",
                              field="payment_terms_timeout", value=seconds)


def terms_of(info: Any, pricing: dict[str, Any] | None, spec: ResourceSpec) -> dict[str, Any]:
    """The terms from a provider's info (None: an MVP-era provider) and its advertised prices."""
    if info is None:
        return {"requires_payment": False, "stream_payment_address": None, "glm_token_address": None,
                "rate_wei_per_second": None, "deposit_wei_per_hour": None}
    paying = requires_payment(info.stream_payment_address)
    # What a stream for ``spec`` costs, as upstream's CLI computes it; null when nothing is paid, or when the
    # provider advertises no GLM prices (a stream cannot be opened to it without a stream_id of your own).
    terms = stream_terms(pricing, spec, 1) if paying else None
    return {"requires_payment": paying, "stream_payment_address": info.stream_payment_address,
            "glm_token_address": info.glm_token_address,
            "rate_wei_per_second": terms.rate_wei if terms else None,
            "deposit_wei_per_hour": terms.per_hour() if terms else None}


def _ask(provider: dict[str, Any], port: int, spec: ResourceSpec, deadline: Deadline,
         http: dict[str, Any]) -> dict[str, Any]:
    client = ProviderClient(provider["ip_address"], port, retries=0, **http)
    client.set_deadline(deadline)
    try:
        info = client.provider_info()
    finally:
        client.close()
    if info is not None and info.provider_id.lower() != provider["provider_id"].lower():
        raise GolemError(f"it answers GET /api/v1/provider/info as provider {info.provider_id}")
    return terms_of(info, provider.get("pricing"), spec)


def add_payment_terms(providers: list[dict[str, Any]], *, provider_port: int, spec: ResourceSpec, budget: float,
                      timeout: float, validate_certs: bool, warn: Callable[[str], None]) -> None:
    """Set ``payment_terms`` on each provider dict: the terms, or None with a warning when it cannot be asked."""
    if not providers:
        return
    deadline = Deadline(budget, option="payment_terms_timeout")
    http = {"timeout": min(timeout, budget), "validate_certs": validate_certs}
    pool = ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(providers)), thread_name_prefix="golem-terms")
    futures: dict[Future, dict[str, Any]] = {pool.submit(_ask, p, provider_port, spec, deadline, http): p
                                             for p in providers}
    try:
        wait(futures, timeout=max(0.0, deadline.remaining()))
    finally:
        # Requests are bounded by the same deadline, so running ones end almost at once.
        pool.shutdown(wait=False, cancel_futures=True)
    late: list[str] = []
    for future, provider in futures.items():
        provider["payment_terms"] = None
        if not future.done() or future.cancelled():
            late.append(provider["provider_id"])
            continue
        error = future.exception()
        if error is None:
            provider["payment_terms"] = future.result()
        elif isinstance(error, GolemError):
            warn(f"no payment terms for provider {provider['provider_id']} ({provider['provider_url']}): {error.msg}")
        else:  # a bug, not a provider's fault: say so rather than hide it
            warn(f"no payment terms for provider {provider['provider_id']}: {type(error).__name__}: {error}")
    if late:
        warn(f"no payment terms for {len(late)} provider(s) that did not answer within payment_terms_timeout "
             f"({budget:g} s): {', '.join(late[:5])}{' ...' if len(late) > 5 else ''}")

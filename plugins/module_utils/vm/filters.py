# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which recorded VMs a user asked for: names (shell-style patterns), providers, countries, statuses and labels.

One implementation for golem_vm_info and the ``golem.vm.golem`` inventory, so a filter means the same in
both. Every value is checked once, here, from what the user wrote (module options or the inventory's
``filters`` dictionary, where nothing has typed it yet); a bad one fails naming the field and the value.

Statuses are kept apart from the rest: after a refresh they apply to the status the provider reports,
which is known only once the providers were asked - and only VMs the other filters keep are asked. An
abandoned row's status is its own, whatever its provider says, so it is judged with the rest.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ansible_collections.golem.vm.plugins.module_utils.foundation.errors import ValidationError
from ansible_collections.golem.vm.plugins.module_utils.state.record import VMRecord
from ansible_collections.golem.vm.plugins.module_utils.state.statuses import ABANDONED, VMStatus
from ansible_collections.golem.vm.plugins.module_utils.vm.fields import check_labels, country_code

# What a refresh reports for a VM its provider no longer knows (HTTP 404).
MISSING = "missing"
# Every status a provider reports (a row records some of them), MISSING, and the row-only ABANDONED.
KNOWN_STATUSES = frozenset((*(status.value for status in VMStatus), MISSING, ABANDONED))
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class NameFilter:
    """``names``: exact VM names go to the state's query; shell-style patterns (``web-*``) are matched here."""

    exact: frozenset[str] | None
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, names: Iterable[str] | None) -> NameFilter:
        if not names:
            return cls(None, ())
        exact = [n for n in names if not _GLOB_CHARS & set(n)]
        patterns = tuple(n for n in names if _GLOB_CHARS & set(n))
        return cls(frozenset(exact), patterns)

    @property
    def sql_names(self) -> list[str] | None:
        """What to hand StateStore.list: None (every row) as soon as there is a pattern."""
        return None if self.exact is None or self.patterns else sorted(self.exact)

    def __call__(self, name: str) -> bool:
        if self.exact is None:
            return True
        return name in self.exact or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


def text_list(value: Any, field: str, what: str) -> list[str]:
    """A list of non-empty strings (one string is a list of one); anything else is refused by name."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValidationError(f"{field} must be a list of {what}, not {value!r}", field=field, value=value)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{field}[{index}] must be {what}, not {item!r}", field=field, value=item)
    return [item.strip() for item in items]


def check_statuses(statuses: Any, field: str = "statuses") -> list[str]:
    """Statuses, validated so a typo fails loudly instead of listing nothing."""
    values = [s.lower() for s in text_list(statuses, field, "a VM status")]
    unknown = sorted(set(values) - KNOWN_STATUSES)
    if unknown:
        raise ValidationError(
            f"unknown status {', '.join(unknown)} in {field}; known: {', '.join(sorted(KNOWN_STATUSES))}",
            field=field, value=unknown[0])
    return values


@dataclass(frozen=True)
class VMFilter:
    """Every condition must hold; an empty one holds for every VM."""

    names: NameFilter = NameFilter(None, ())
    providers: frozenset[str] = frozenset()  # provider ids or IPs, case-folded
    countries: frozenset[str] = frozenset()  # upper case, as recorded
    statuses: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    exclude_statuses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, *, names: Any = None, providers: Any = None, countries: Any = None, statuses: Any = None,
              labels: Any = None, exclude_statuses: Any = None, prefix: str = "") -> VMFilter:
        """From the user's values; ``prefix`` (``filters.``) goes before each field name in messages."""
        codes = [country_code(c, field=f"{prefix}countries")
                 for c in text_list(countries, f"{prefix}countries", "a two-letter country code")]
        wanted = check_statuses(statuses, f"{prefix}statuses")
        unwanted = check_statuses(exclude_statuses, f"{prefix}exclude_statuses")
        _refuse_overlap(wanted, unwanted, prefix)
        return cls(
            names=NameFilter.parse(text_list(names, f"{prefix}names",
                                             "a VM name or a shell-style pattern such as web-*")),
            providers=frozenset(p.casefold() for p in text_list(providers, f"{prefix}providers",
                                                                "a provider id or IP address")),
            countries=frozenset(c for c in codes if c),
            statuses=tuple(wanted),
            labels=tuple(sorted((check_labels(labels, f"{prefix}labels") or {}).items())),
            exclude_statuses=tuple(unwanted),
        )

    @classmethod
    def from_mapping(cls, filters: Any, base: VMFilter | None = None, field: str = "filters") -> VMFilter:
        """``base`` with the conditions a ``filters`` dictionary gives (keys ``labels``, ``countries``,
        ``providers``, ``statuses``) in place of its own."""
        if filters is None:
            filters = {}
        if not isinstance(filters, Mapping):
            raise ValidationError(f"{field} must be a dictionary, not {filters!r}", field=field, value=filters)
        unknown = sorted(str(k) for k in filters if k not in FILTER_KEYS)
        if unknown:
            raise ValidationError(f"{field} has the unknown key {unknown[0]}; known: {', '.join(FILTER_KEYS)}",
                                  field=field, value=unknown[0])
        given = cls.parse(**{str(k): v for k, v in filters.items()}, prefix=f"{field}.")
        merged = replace(base or cls(), **{str(k): getattr(given, str(k)) for k in filters})
        _refuse_overlap(merged.statuses, merged.exclude_statuses, f"{field}." if "statuses" in filters else "")
        return merged

    def selects(self, record: VMRecord) -> bool:
        """Whether the row passes every condition but its status - and, for an abandoned row, its status too: no
        provider's answer changes it, so its provider is not asked when the status filters leave it out."""
        if record.status == ABANDONED and not self.status_ok(ABANDONED):
            return False
        if not self.names(record.name):
            return False
        if self.providers and not ((record.provider_id or "").casefold() in self.providers
                                   or record.provider_ip.casefold() in self.providers):
            return False
        if self.countries and (record.country or "").upper() not in self.countries:
            return False
        if self.labels:
            have = record.labels
            return all(have.get(key) == value for key, value in self.labels)
        return True

    def status_ok(self, status: str | None) -> bool:
        status = status or ""
        return (not self.statuses or status in self.statuses) and status not in self.exclude_statuses

    def store_query(self, *, with_statuses: bool) -> dict[str, Any]:
        """What the state can narrow in its own query (``StateBackend.list`` keywords); ``selects`` does the rest."""
        return {"statuses": list(self.statuses) if with_statuses and self.statuses else None,
                "names": self.names.sql_names}

    def fingerprint(self) -> dict[str, Any]:
        """Plain JSON that differs whenever the filter does (the inventory's cache key)."""
        return {
            "names": sorted(self.names.exact or ()) + sorted(self.names.patterns),
            "providers": sorted(self.providers),
            "countries": sorted(self.countries),
            "statuses": sorted(self.statuses),
            "labels": [list(pair) for pair in self.labels],
            "exclude_statuses": sorted(self.exclude_statuses),
        }


def _refuse_overlap(statuses: Iterable[str], excluded: Iterable[str], prefix: str) -> None:
    """A status both asked for and left out: one of the two would silently lose."""
    both = sorted(set(statuses) & set(excluded))
    if both:
        raise ValidationError(f"status {both[0]} is in both {prefix}statuses and exclude_statuses",
                              field="exclude_statuses", value=both[0])


# The deprecated ``filters`` dictionary's keys; exclude_statuses came later and is an option only.
FILTER_KEYS = ("labels", "countries", "providers", "statuses")

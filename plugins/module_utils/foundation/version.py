# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own version, kept in one place for the User-Agent and the docs.

It must match ``version`` in galaxy.yml; a unit test checks that it does.
"""

from __future__ import annotations

COLLECTION_VERSION = "0.3.0"

"""Settings shared by the whole suite."""

from __future__ import annotations

import os

from hypothesis import settings

# On CI the property tests draw the same examples every run (derandomized), so a submission's
# verdict never depends on a lucky draw; on a developer's machine they keep exploring new ones
# (and a counterexample found there is pinned with @example).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

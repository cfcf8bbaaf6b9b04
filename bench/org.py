"""What the benchmarks ask of a running sandbox org: its timing model and its call count.

The sandbox is getting a timing model for REST and Bulk (`timing: realistic | instant`, set
like its faults). The benchmarks ask for the realistic one, and say in their output which
one was in force: an org that answers instantly favours whichever contender makes more calls.
"""

from __future__ import annotations

from typing import Any

from resources.https import TrustingSession


class Org:
    """The sandbox's admin endpoints, over the same HTTPS as the API."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.base = info["instance_url"]
        self.http = TrustingSession(info["ca_bundle"])

    def use_timing(self, profile: str) -> str:
        """Set the timing profile; returns what is in force (`instant` if the sandbox has no
        timing model yet and refuses the setting)."""
        if profile == "instant":
            return "instant"
        response = self.http.patch(f"{self.base}/__admin/faults", json={"timing": profile})
        if response.status_code == 400 and "timing" in response.text:
            return "instant (this sandbox has no timing model)"
        response.raise_for_status()
        return str(response.json().get("timing", profile))

    def calls(self) -> int:
        """API calls the org has counted so far (logins are not API calls)."""
        response = self.http.get(f"{self.base}/__admin/calls")
        response.raise_for_status()
        return int(response.json()["total"])

    def count(self, sobject: str) -> int:
        response = self.http.get(f"{self.base}/__admin/records/{sobject}/count")
        response.raise_for_status()
        return int(response.json()["count"])

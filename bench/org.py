"""What the benchmarks ask of a running sandbox org: its timing model and its call count.

The sandbox models how long a real org takes (`/__admin/timing`, profiles `realistic` and
`instant`). The benchmarks ask for the realistic one and print the model in force: an org
that answers instantly favours whichever contender makes more calls.
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
        """Set the timing profile; returns the model in force, as the sandbox reports it."""
        response = self.http.put(f"{self.base}/__admin/timing", json=profile)
        response.raise_for_status()
        model = response.json()
        fields = ", ".join(f"{k}={v}" for k, v in model.items() if k != "profile")
        return f"{model['profile']} ({fields})"

    def calls(self) -> int:
        """API calls the org has counted so far (logins are not API calls)."""
        response = self.http.get(f"{self.base}/__admin/calls")
        response.raise_for_status()
        return int(response.json()["total"])

    def count(self, sobject: str) -> int:
        response = self.http.get(f"{self.base}/__admin/records/{sobject}/count")
        response.raise_for_status()
        return int(response.json()["count"])

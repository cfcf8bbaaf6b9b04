"""HTTP sessions that trust the CA bundle they are given.

`requests` lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` override a session's own `verify`
setting (a long-standing requests behaviour), so a client configured to trust a private CA
(a corporate proxy's, or the local sandbox org's) would silently fall back to the system
store on machines that set those variables. This session keeps its own setting first.
"""

from __future__ import annotations

from typing import Any

import requests


class TrustingSession(requests.Session):
    def __init__(self, ca_bundle: str | None = None) -> None:
        super().__init__()
        if ca_bundle:
            self.verify = ca_bundle

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings

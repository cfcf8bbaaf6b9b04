"""Serving the org over HTTPS on 127.0.0.1, in the foreground (`sf-assets sandbox`) or in a
background thread (the test fixture and the demo).

simple-salesforce always speaks `https://`, so the sandbox makes a private certificate
authority and a server certificate at every start and writes the CA bundle next to the info
file; clients trust it the way they would trust a corporate proxy's CA.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from sf_sandbox.app import create_app
from sf_sandbox.org import Org

HOST = "127.0.0.1"


class SandboxServer:
    def __init__(self, org: Org, *, port: int = 0, workdir: Path | None = None) -> None:
        self.org = org
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sf-sandbox-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((HOST, port))
        self.port = self.socket.getsockname()[1]
        self.ca_bundle, certfile, keyfile = self._make_certificates()
        self.jwt_key_file = self._write_jwt_key()
        config = uvicorn.Config(
            create_app(org),
            ssl_certfile=str(certfile),
            ssl_keyfile=str(keyfile),
            log_level=os.environ.get("SF_SANDBOX_LOG_LEVEL", "warning"),
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=3,
            h11_max_incomplete_event_size=64 * 1024 * 1024,
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def _make_certificates(self) -> tuple[Path, Path, Path]:
        ca = trustme.CA(organization_name="sf-assets sandbox")
        cert = ca.issue_cert(HOST, "localhost")
        ca_bundle = self.workdir / "sandbox-ca.pem"
        ca.cert_pem.write_to_path(str(ca_bundle))
        certfile = self.workdir / "sandbox-cert.pem"
        cert.cert_chain_pems[0].write_to_path(str(certfile))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(certfile), append=True)
        keyfile = self.workdir / "sandbox-key.pem"
        cert.private_key_pem.write_to_path(str(keyfile))
        os.chmod(keyfile, 0o600)
        return ca_bundle, certfile, keyfile

    def _write_jwt_key(self) -> Path:
        """The connected app's private key, for clients that log in with the JWT bearer flow."""
        path = self.workdir / "jwt-private-key.pem"
        path.write_text(self.org.credentials.jwt_private_key_pem, encoding="utf-8")
        os.chmod(path, 0o600)
        return path

    def info(self) -> dict[str, Any]:
        """What a client needs to talk to this org; written as the info file."""
        creds = self.org.credentials
        return {
            "instance_url": self.url,
            "login_url": self.url,
            "ca_bundle": str(self.ca_bundle),
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
            "jwt_key_file": str(self.jwt_key_file),
            "api_version": self.org.api_version,
            "org_id": self.org.org_id,
            "emarsys_url": self.url,
            "emarsys_token": creds.emarsys_token,
            "merchant_id": creds.merchant_id,
            "admin_url": f"{self.url}/__admin",
            **self.org.extensions.get("info", {}),
        }

    def write_info(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.info(), indent=2), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    def start(self) -> SandboxServer:
        """Serve from a background thread; returns once the server accepts connections."""
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def run(self, info_file: Path | None = None) -> None:
        """Serve in the foreground until interrupted."""
        if info_file is not None:
            self._write_info_when_ready(info_file)
        self.server.run(sockets=[self.socket])

    def _write_info_when_ready(self, info_file: Path) -> None:
        def wait_then_write() -> None:
            while not self.server.started and not self.server.should_exit:
                time.sleep(0.01)
            if self.server.started:
                self.write_info(info_file)
                logging.getLogger("sandbox").warning(
                    "sandbox org ready at %s (info: %s)", self.url, info_file
                )

        threading.Thread(target=wait_then_write, daemon=True).start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # idle keep-alive connections need not linger
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.org.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A small Toxiproxy HTTP client with a timeout on every call (the cluster's own server)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ToxiproxyError(RuntimeError):
    pass


class ToxiproxyAPI:
    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise ToxiproxyError(f"toxiproxy {method} {path}: HTTP {e.code} {e.read()[:200]!r}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise ToxiproxyError(f"toxiproxy {method} {path}: {e}") from None
        return json.loads(raw) if raw else None

    def version(self) -> str:
        with urllib.request.urlopen(self.url + "/version", timeout=self.timeout) as resp:
            return resp.read().decode().strip()

    def proxies(self) -> dict[str, Any]:
        return self._call("GET", "/proxies")

    def create_proxy(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        return self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, proxy: str, type: str, attributes: dict[str, Any], *, name: str | None = None,
                  stream: str = "downstream", toxicity: float = 1.0) -> dict[str, Any]:
        body = {"name": name or f"{type}_{stream}", "type": type, "stream": stream, "toxicity": toxicity,
                "attributes": attributes}
        return self._call("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

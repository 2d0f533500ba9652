"""The connection's transport adapter: requests' own, with the CA bundle looked at once.

requests asks the file system about the CA bundle on every request: ``os.path.isdir`` of a bundle
path given as ``verify`` (REQUESTS_CA_BUNDLE, common behind company proxies) while it picks the
connection pool, and, for HTTPS, ``os.path.exists`` and ``os.path.isdir`` of the bundle again in
``cert_verify`` (certifi's when ``verify`` is True). Three system calls per request, each a hand-off
of the interpreter between download threads, to learn what cannot change during a run. This adapter
learns it once per bundle and gives urllib3 the same settings requests would: the same pool keys,
the same ``cert_reqs``, ``ca_certs`` or ``ca_cert_dir``. A bundle missing at the first request
fails it as requests would (its own error); client certificates take requests' own path.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from requests import PreparedRequest
from requests.adapters import DEFAULT_CA_BUNDLE_PATH, HTTPAdapter

if TYPE_CHECKING:  # the stubs' names for what requests returns (plain dicts at run time)
    from requests.adapters import _HostParams, _PoolKwargs


class BundleOnceAdapter(HTTPAdapter):
    """An :class:`HTTPAdapter` that looks a CA bundle up (exists, is a folder) once per path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bundles: dict[str, bool] = {}  # bundle path -> is a folder (only bundles that exist)
        self._bundles_lock = threading.Lock()

    def _is_folder(self, path: str) -> bool | None:
        """Whether the bundle ``path`` is a folder of certificates; None when it does not exist."""
        found = self._bundles.get(path)
        if found is None:
            if not os.path.exists(path):
                return None  # not remembered: a bundle put in place later is found then
            found = os.path.isdir(path)
            with self._bundles_lock:
                self._bundles[path] = found
        return found

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: str | tuple[str, str] | None = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        if not isinstance(verify, str):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        folder = self._is_folder(verify)
        if folder is None:  # requests' own handling (and error) for a bundle that is not there
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
        pool_kwargs["ca_cert_dir" if folder else "ca_certs"] = verify
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        if cert or not verify or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)
            return
        bundle = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
        folder = self._is_folder(bundle) if bundle else None
        if folder is None:
            super().cert_verify(conn, url, verify, cert)  # raises requests' "invalid path" error
            return
        conn.cert_reqs = "CERT_REQUIRED"
        if folder:
            conn.ca_cert_dir = bundle
        else:
            conn.ca_certs = bundle

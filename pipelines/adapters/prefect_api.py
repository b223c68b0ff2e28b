"""Whether a configured Prefect API answers and accepts this client, before any flow run uses it.

Without this, a Prefect server that is down or refuses ``PREFECT_API_AUTH_STRING`` shows up as a
traceback from deep inside the first flow run.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

from pipelines.config.errors import AuthenticationError, ServiceError


def _request(url: str) -> urllib.request.Request:
    request = urllib.request.Request(url)
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if auth is None:
        from prefect.settings import PREFECT_API_AUTH_STRING

        auth = PREFECT_API_AUTH_STRING.value()
    if auth:
        request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    return request


def check(api_url: str, timeout: float = 10.0) -> str:
    """The server's version; a one-line error when it is unreachable or refuses the credentials."""
    base = api_url.rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"Prefect at {base} answers /health with {exc.code}: is it a Prefect API "
                           "(PREFECT_API_URL ends in /api)?") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"Prefect at {base} is unreachable ({getattr(exc, 'reason', exc)})") from None
    try:
        with urllib.request.urlopen(_request(f"{base}/admin/version"), timeout=timeout) as response:
            return str(json.loads(response.read() or b'""'))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            given = "PREFECT_API_AUTH_STRING" if os.environ.get("PREFECT_API_AUTH_STRING") else \
                "no PREFECT_API_AUTH_STRING"
            raise AuthenticationError(f"Prefect at {base} refused the credentials ({given}): set "
                                      "PREFECT_API_AUTH_STRING to the server's auth string") from None
        raise ServiceError(f"Prefect at {base} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"Prefect at {base} is unreachable ({getattr(exc, 'reason', exc)})") from None

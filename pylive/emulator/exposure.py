"""Whether the local HTTP API is reachable from other machines.

``pylive dev --local`` runs the app's functions with the developer's own AWS credentials and
answers every request without authorization, as a developer's tool does; listening on an
address other than loopback hands that to anyone on the network, so it is warned about.
"""

from __future__ import annotations

import ipaddress
import sys


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


def warn_if_exposed(host: str) -> None:
    """Print a warning on stderr when ``host`` is not a loopback address."""
    if not is_loopback(host):
        print(
            f"Warning: --host {host} makes the local API reachable from the network: anyone "
            "who can reach this machine can call your functions, which run with your AWS "
            "credentials. Use --host 127.0.0.1 unless you mean it.",
            file=sys.stderr,
            flush=True,
        )

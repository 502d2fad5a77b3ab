"""A ready OpenVPN profile (.ovpn) from the configuration Client VPN exports. Pure, no I/O.

The exported file holds the endpoint's address and the CA chain of its server certificate,
but not the client's certificate and key: AWS's guide has users paste them in by hand as
``<cert>`` and ``<key>`` blocks. :func:`build_profile` does that edit.
"""

from __future__ import annotations

import re

from pylive.vpn import VpnError

_BLOCK_RE = {
    name: re.compile(rf"^[ \t]*<{name}>[ \t]*\n.*?^[ \t]*</{name}>[ \t]*\n?", re.M | re.S)
    for name in ("cert", "key", "ca")
}
# `cert FILE` / `key FILE` directives would make OpenVPN read files instead of the blocks.
_FILE_DIRECTIVE_RE = re.compile(r"^[ \t]*(cert|key)[ \t]+\S.*\n?", re.M)
COMMENT_PREFIX = "# pylive: "
_COMMENT_RE = re.compile(r"\A# pylive: .*\n")
_REMOTE_RE = re.compile(r"^[ \t]*remote[ \t]+(\S+)(?:[ \t]+(\d+))?", re.M)


def build_profile(
    exported: str, client_cert_pem: str, client_key_pem: str, *, comment: str | None = None
) -> str:
    """The exported configuration with the client's certificate and key embedded.

    Existing ``<cert>``/``<key>`` blocks and ``cert``/``key`` file directives are replaced,
    so building from an already edited profile gives the same result. ``comment`` (one line)
    goes on top as ``# pylive: <comment>``, replacing such a line written before.
    """
    text = _COMMENT_RE.sub("", exported.replace("\r\n", "\n"), count=1)
    if _REMOTE_RE.search(text) is None:
        raise VpnError("the exported Client VPN configuration has no `remote` line")
    ca = _BLOCK_RE["ca"].search(text)
    if ca is None:
        raise VpnError("the exported Client VPN configuration has no <ca> block")
    for pem, marker in ((client_cert_pem, "CERTIFICATE"), (client_key_pem, "PRIVATE KEY")):
        if "-----BEGIN " not in pem or marker not in pem:
            raise VpnError(f"the client {marker.lower()} is not in PEM format")
    for name in ("cert", "key"):
        text = _BLOCK_RE[name].sub("", text)
    text = _FILE_DIRECTIVE_RE.sub("", text)
    ca = _BLOCK_RE["ca"].search(text)
    assert ca is not None  # removing other blocks leaves <ca> in place
    head, tail = text[: ca.end()], text[ca.end() :]
    if not head.endswith("\n"):
        head += "\n"
    profile = head + _block("cert", client_cert_pem) + _block("key", client_key_pem) + tail
    if comment:
        profile = f"{COMMENT_PREFIX}{comment.splitlines()[0]}\n{profile}"
    return profile if profile.endswith("\n") else profile + "\n"


def ca_block(exported: str) -> str:
    """The PEM text inside the ``<ca>`` block of an exported configuration ("" if none)."""
    match = _BLOCK_RE["ca"].search(exported.replace("\r\n", "\n"))
    if match is None:
        return ""
    lines = match.group(0).strip().splitlines()
    return "\n".join(lines[1:-1]).strip() + "\n"


def remote(exported: str) -> tuple[str, int | None] | None:
    """The host and port of the first ``remote`` line."""
    match = _REMOTE_RE.search(exported)
    if match is None:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _block(name: str, pem: str) -> str:
    body = pem.replace("\r\n", "\n").strip()
    return f"<{name}>\n{body}\n</{name}>\n"

"""Which hosts a user-supplied link may point at.

Invariant: a link typed by a user is never sent to EvoLink (and never fetched by the bot) when
its host is loopback, private, link-local, multicast or otherwise non-global, or a local name
(`localhost`, `*.local`, `*.internal`, a single word). Legacy IPv4 spellings (`127.1`,
`0x7f000001`, `2130706433`) and IPv4-mapped IPv6 are read as the addresses they are. No DNS
lookup is made: the bot itself never fetches these links.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from bot.domain.errors import InputError

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain")


def is_internal_host(host: str) -> bool:
    """True for a host EvoLink must not be sent to: a non-global address or a local name."""
    name = host.strip().rstrip(".").casefold()
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if re.fullmatch(r"[0-9a-fx.]+", name):
            try:  # inet_aton reads the legacy spellings curl and browsers accept: 127.1, 0x7f.1
                address = ipaddress.IPv4Address(socket.inet_aton(name))
            except OSError:
                address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return not address.is_global or address.is_multicast
    if ":" in name or "%" in name:
        return True  # an IPv6 literal with a zone, or something that only looks like one
    return name == "localhost" or "." not in name or name.endswith(_LOCAL_SUFFIXES)


def refuse_internal_host(url: str) -> None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return  # not a URL at all: `_image` refuses it with the general message
    if host and is_internal_host(host):
        raise InputError(
            f"--image must be a public link EvoLink can fetch; {host!r} is a local or private "
            "address.",
            field="image_url",
        )

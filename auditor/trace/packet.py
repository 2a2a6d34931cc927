"""The packet a trace follows: the first packet of a new connection, as the kernel sees it."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from auditor.errors import InputError
from auditor.model import IPFamily

#: a client outside the cluster and outside every source range the generator or the
#: reference data use (TEST-NET-2, and an IPv6 documentation address outside 2001:db8::/64)
EXTERNAL_CLIENT = {IPFamily.IPV4: "198.51.100.7", IPFamily.IPV6: "2001:db8:ffff::7"}
PROTOCOLS = ("tcp", "udp", "sctp")
_PROTOCOL_NUMBERS = {6: "tcp", 17: "udp", 132: "sctp"}


class Hook(StrEnum):
    """Where the packet enters netfilter: from the network, or from a local process."""

    PREROUTING = "prerouting"
    OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class Packet:
    """A new connection's first packet. `mark` is the packet mark it enters with."""

    family: IPFamily
    protocol: str
    src: str
    dst: str
    dport: int
    hook: Hook = Hook.PREROUTING
    mark: int = 0
    #: the input interface, when known (rules that test one are `unknown` without it)
    in_iface: str | None = None

    @property
    def text(self) -> str:
        """`tcp 198.51.100.7 -> 172.30.0.41:80 (prerouting)`."""
        return f"{self.protocol} {self.src} -> {host_port_text(self.dst, self.dport)} ({self.hook.value})"


def host_port_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def family_of(address: str) -> IPFamily:
    return IPFamily.IPV6 if ":" in address else IPFamily.IPV4


def protocol_name(value: object) -> str | None:
    """`tcp` for "tcp", "TCP" or 6; None for anything else."""
    if isinstance(value, int):
        return _PROTOCOL_NUMBERS.get(value)
    text = str(value).lower()
    return text if text in PROTOCOLS else None


@functools.lru_cache(maxsize=65536)
def canonical_ip(text: str) -> str:
    """An address in one spelling (`fd00::1`, `10.0.0.1`); text that is not an address as given."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


@functools.lru_cache(maxsize=16384)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def in_network(address: str, network: str) -> bool | None:
    """Is `address` inside `network` (an address or `addr/len`)? None when either does not parse."""
    ip, net = _address(address), _network(network)
    if ip is None or net is None:
        return None
    return ip.version == net.version and ip in net


def in_range(address: str, low: str, high: str) -> bool | None:
    ip, lo, hi = _address(address), _address(low), _address(high)
    if ip is None or lo is None or hi is None or not (ip.version == lo.version == hi.version):
        return None
    return lo <= ip <= hi  # type: ignore[operator]


def is_loopback(address: str) -> bool:
    ip = _address(address)
    return ip is not None and ip.is_loopback


def parse_destination(text: str, protocol: str | None = None) -> tuple[str, int, str]:
    """`IP:PORT[/PROTO]` or `[IPv6]:PORT[/PROTO]` as (address, port, protocol); tcp by default."""
    source = "--dst"
    body, _, proto = text.partition("/")
    proto = (proto or protocol or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InputError(source, f"protocol {proto!r} is not one of {', '.join(PROTOCOLS)}")
    if body.startswith("["):
        host, sep, port = body[1:].partition("]:")
    else:
        host, sep, port = body.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(source, f"expected IP:PORT[/PROTO] (IPv6 as [IP]:PORT), got {text!r}")
    if _address(host) is None:
        raise InputError(source, f"{host!r} is not an IP address")
    return canonical_ip(host), int(port), proto


def parse_address(text: str, what: str = "--src") -> str:
    if _address(text) is None:
        raise InputError(what, f"{text!r} is not an IP address")
    return canonical_ip(text)


__all__ = [
    "EXTERNAL_CLIENT",
    "Hook",
    "Packet",
    "canonical_ip",
    "family_of",
    "host_port_text",
    "in_network",
    "in_range",
    "is_loopback",
    "parse_address",
    "parse_destination",
    "protocol_name",
]

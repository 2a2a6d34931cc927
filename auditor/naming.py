"""kube-proxy's chain and set names, computed the way kube-proxy computes them.

Hashes are one-way: the normalizers read names from comments and chain names, and use
these functions only to confirm a guess. The fixture generator uses them to write
kube-proxy-shaped rules. (FORMATS.md section 1.)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress

#: knftables.NameLengthMax (256) - 16; a longer per-service nft name is cut and ends in "..."
NFT_CHAIN_NAME_BASE_MAX = 240


def _hash32(text: str, length: int) -> str:
    """The first `length` base32 characters of sha256(text) (5 bits each, so encode just enough bytes)."""
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest[: (length * 5 + 7) // 8]).decode()[:length]


def service_port_name(namespace: str, name: str, port_name: str) -> str:
    """`ServicePortName.String()`: ``ns/svc:port``, or ``ns/svc`` when the port is unnamed."""
    base = f"{namespace}/{name}"
    return f"{base}:{port_name}" if port_name else base


def endpoint_string(address: str, port: int) -> str:
    """`BaseEndpointInfo.String()`: ``ip:port``, with brackets around an IPv6 address."""
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def iptables_service_hash(svc_port_name: str, protocol: str) -> str:
    """`portProtoHash`: the hash shared by KUBE-SVC/SVL/EXT/FW chains of one service port."""
    return _hash32(svc_port_name + protocol, 16)


def iptables_endpoint_chain(svc_port_name: str, protocol: str, endpoint: str) -> str:
    """`servicePortEndpointChainName`: KUBE-SEP-<hash of name + protocol + endpoint>."""
    return "KUBE-SEP-" + _hash32(svc_port_name + protocol + endpoint, 16)


def nft_hash_and_truncate(name: str) -> str:
    """`hashAndTruncate`: 8 base32 characters, a dash, then the name, cut to 240 with "..."."""
    full = _hash32(name, 8) + "-" + name
    if len(full) > NFT_CHAIN_NAME_BASE_MAX:
        full = full[: NFT_CHAIN_NAME_BASE_MAX - 3] + "..."
    return full


def nft_service_chain_base(namespace: str, name: str, protocol: str, port_name: str) -> str:
    """`servicePortChainNameBase`: hash-name of ``ns/svc/proto/portName``."""
    return nft_hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}")


def nft_endpoint_chain_base(namespace: str, name: str, protocol: str, port_name: str, address: str, port: int) -> str:
    """`servicePortEndpointChainNameBase`: ``ns/svc/proto/port__ip/port``, ':' in IPs as '.'."""
    ep = f"{address.replace(':', '.')}/{port}"
    return nft_hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}__{ep}")


@functools.lru_cache(maxsize=65536)
def canonical_address(text: str) -> str:
    """An address with a host prefix dropped (``10.1.2.3/32`` -> ``10.1.2.3``), a network as
    ``addr/len`` (``10.0.0.0/255.0.0.0`` -> ``10.0.0.0/8``); anything else as given."""
    addr, sep, plen = text.partition("/")
    if not sep:
        return addr
    if plen == ("128" if ":" in addr else "32"):
        return addr
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)

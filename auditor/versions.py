"""Version numbers as the checks compare them: kernels, nft, iptables, Kubernetes."""

from __future__ import annotations

import re
from typing import NamedTuple

_NUMBERS = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


class Version(NamedTuple):
    """major.minor.patch; compares numerically (5.13 < 5.15.0 < 6.1)."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_version(self) -> str:
        return f"{self.major}.{self.minor}"


def parse_version(text: str | None) -> Version | None:
    """The first dotted version in `text`: "6.1.0-18-amd64" -> 6.1.0, "nftables v1.0.6 (...)" -> 1.0.6,
    "v1.31.2+k3s1" -> 1.31.2. None when there is none."""
    if not text:
        return None
    m = _NUMBERS.search(text)
    if m is None:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3] or 0))

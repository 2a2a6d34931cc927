"""kp-audit: is this node safe to move kube-proxy from iptables mode to nftables mode?"""

__version__ = "0.1.0"

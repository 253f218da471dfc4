# -*- test-case-name: tests -*-
"""
penbal: a TCP and UDP load balancer on Twisted, in the spirit of Pen, that knows Galera Cluster.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

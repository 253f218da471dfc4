"""
The C{twist penbal} / C{twistd penbal} dropin; everything else lives in L{penbal.tap}.
"""

from twisted.application.service import ServiceMaker

penbal = ServiceMaker(
    "penbal", "penbal.tap", "A TCP load balancer in the spirit of Pen, Galera-aware.", "penbal"
)

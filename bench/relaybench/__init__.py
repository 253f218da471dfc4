"""
Side-by-side benchmark of TCP relays (penbal, Pen, HAProxy) on loopback.

Run it through ``bench/run``; see ``bench/README.md``.
"""

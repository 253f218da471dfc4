"""
Several worker processes relaying on one listen address (C{--workers N}): the main process
holds the sockets, the health checks, the control port and the status; the workers relay.
"""

"""
Watching penbal: one status snapshot (L{penbal.status.snapshot}) shown as an HTML page, JSON,
Prometheus metrics and plain text (the control port's C{status}, the SIGUSR1 summary).
"""

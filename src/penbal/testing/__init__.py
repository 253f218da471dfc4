"""
Helpers for penbal's own tests and demos: a real Galera cluster on loopback.
"""

"""
Relaying streams between a client and a backend, and dialling backends with failover.
"""

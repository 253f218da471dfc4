"""
Integration tests: a real penbal process on loopback sockets.
"""

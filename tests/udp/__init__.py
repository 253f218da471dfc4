"""
Tests of the UDP balancer (penbal.udp).
"""

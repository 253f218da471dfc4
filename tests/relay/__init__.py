"""
Tests of penbal.relay.
"""

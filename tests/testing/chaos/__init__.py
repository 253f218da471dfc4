"""
Tests for penbal.testing.chaos (the parts that need no cluster).
"""

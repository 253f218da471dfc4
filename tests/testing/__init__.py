"""
Tests for penbal.testing.
"""

"""
Tests of penbal.status.
"""

"""
Tests of penbal.workers.
"""

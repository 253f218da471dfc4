"""
Tests of penbal.config.
"""

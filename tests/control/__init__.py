"""
Tests of penbal.control.
"""

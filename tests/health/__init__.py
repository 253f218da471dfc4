"""
Tests of penbal.health: fitness rules, hysteresis, the checks and their scheduler.
"""

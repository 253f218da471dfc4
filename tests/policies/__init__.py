"""
Tests of the selection policies (penbal.policies) and their discovery.
"""

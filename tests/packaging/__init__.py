"""
Tests of how penbal is installed and run as a service: systemd units, restarts, the .deb.
"""

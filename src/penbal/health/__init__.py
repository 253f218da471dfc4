# -*- test-case-name: tests.health -*-
"""
Active health checks: a periodic check per backend (TCP connect, or Galera's wsrep state over
the MySQL protocol), judged into a L{penbal.backend.Fitness} with rise/fall hysteresis.
"""

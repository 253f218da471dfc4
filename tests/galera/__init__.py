"""
penbal in front of a real 3-node MariaDB Galera cluster on loopback: each failure mode of the
Galera notes driven through a running penbal, and sysbench end to end.

These tests need MariaDB, galera-4, rsync and sysbench (scripts/install-galera); without them
they fail, they are never skipped.
"""

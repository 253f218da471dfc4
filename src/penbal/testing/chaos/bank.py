# -*- test-case-name: tests.galera.test_chaos -*-
"""
The data a chaos run works on: a table of accounts whose balances always add up to the same
total (clients only ever move money between two accounts in one transaction), and one version
row that a single writer keeps raising.
"""

from __future__ import annotations

from typing import Any

import pymysql

from penbal.testing.galera_cluster import GaleraCluster

ACCOUNTS = 200
OPENING_BALANCE = 1_000
TOTAL = ACCOUNTS * OPENING_BALANCE

#: MySQL's deadlock error: on Galera also a certification conflict between two nodes' writes.
CONFLICT = 1213


def create_tables(cluster: GaleraCluster, node: int = 1) -> None:
    """(Re)create the accounts and the version row through node C{node}, as root."""
    rows = ", ".join(f"({i}, {OPENING_BALANCE})" for i in range(1, ACCOUNTS + 1))
    db = cluster.database
    cluster.sql(node, "; ".join([
        f"DROP TABLE IF EXISTS {db}.chaos_accounts, {db}.chaos_version",
        f"CREATE TABLE {db}.chaos_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)",
        f"INSERT INTO {db}.chaos_accounts VALUES {rows}",
        f"CREATE TABLE {db}.chaos_version (id INT PRIMARY KEY, v BIGINT NOT NULL)",
        f"INSERT INTO {db}.chaos_version VALUES (1, 0)",
    ]), timeout=30)


def transfer(connection: Any, source: int, target: int, amount: int) -> None:
    """Move C{amount} from account C{source} to account C{target} in one transaction."""
    with connection.cursor() as cursor:
        cursor.execute("START TRANSACTION")
        try:
            cursor.execute("UPDATE chaos_accounts SET balance = balance - %s WHERE id = %s",
                           (amount, source))
            cursor.execute("UPDATE chaos_accounts SET balance = balance + %s WHERE id = %s",
                           (amount, target))
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except pymysql.err.MySQLError:
                pass
            raise


def total(connection: Any) -> int:
    """The sum of every balance, read in one statement (one consistent snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(SUM(balance), 0), COUNT(*) FROM chaos_accounts")
        amount, count = cursor.fetchone()
    # A missing account shows as a wrong total too.
    return int(amount) if int(count) == ACCOUNTS else -1


def version(connection: Any) -> int:
    """The version row's value."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM chaos_version WHERE id = 1")
        (value,) = cursor.fetchone()
    return int(value)


def raise_version(connection: Any, value: int) -> None:
    """
    Set the version row to C{value} unless it is higher already: a write left pending on a
    frozen node and applied after later ones never lowers it.
    """
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chaos_version SET v = GREATEST(v, %s) WHERE id = 1", (value,))


def node_name(connection: Any) -> str:
    """The C{wsrep_node_name} of the node at the other end of C{connection}."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@wsrep_node_name")
        (name,) = cursor.fetchone()
    return str(name)


def error_code(error: BaseException) -> int | None:
    """The MySQL error number of C{error}, if it has one."""
    if isinstance(error, pymysql.err.MySQLError) and error.args and isinstance(error.args[0],
                                                                                int):
        return error.args[0]
    return None


def describe(error: BaseException) -> str:
    """One line naming C{error}."""
    return f"{type(error).__name__}: {error}"[:300]

"""
UDP balancing (C{--udp}): one session per client address, each with its own connected socket
towards the backend the policy picked, ended when idle, bounded in number.
"""

"""The launcher: ``batchcalls`` command line and the embedded dev stack.

The only package that imports both ``server`` and ``dialer`` (and the
simulated carrier): it starts them as separate processes.
"""

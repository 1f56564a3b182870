"""The dialer: a separate, stateless process (any number of replicas) that
takes Redis leases for concurrency slots, claims due contacts, asks the
server to start a fenced attempt, places the call through a telephony
provider, reports the outcome and releases the slots.

Entry points: ``python -m dialer`` (``dialer.__main__.main``) and, in
process, ``dialer.worker.Dialer``.
"""

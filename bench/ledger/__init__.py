"""The billing fault-injection run: mixed load, killed servers, and a ledger that must balance.

The bundled mock upstream keeps its own ledger of the tokens it served per
request (``usage`` on its request records). Two gateway processes serve a
mixed load against it while the run SIGKILLs and restarts Redis (append-only),
the usage drainer (mid-batch), PostgreSQL as the drainer sees it (a proxy in
between is stopped), a gateway process mid-stream, and Redis again while the
drainer replays the local spool. Afterwards ``check`` compares the gateway's
usage events with the mock's ledger priced by the model table.

``tests/billing/test_fault_ledger.py`` runs a modest load in ``make test``;
``python -m bench.ledger`` runs a bigger one and writes its figures into
``docs/benchmarks-billing.md``.
"""

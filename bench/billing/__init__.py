"""Billing benchmarks: usage rollups and budget seeding on N raw usage events (``--events``), and the
hot-path cost of rate-limit and budget admission (the Redis Lua calls). Run ``python -m bench.billing``;
raw results go to ``docs/results/billing.json`` and its section of ``docs/benchmarks-billing.md``.
"""

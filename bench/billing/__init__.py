"""Billing benchmarks: usage rollups and budget seeding on 10M raw usage events, and the hot-path cost of
rate-limit and budget admission (the Redis Lua calls). Run ``python -m bench.billing``; results go to
``bench/results/billing.json`` and ``docs/benchmarks-billing.md``.
"""

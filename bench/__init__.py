"""Benchmarks at a property group's scale: a bulk ledger generator and a harness that measures bianmin against raw SQL."""

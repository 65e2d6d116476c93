"""Re-runnable benchmarks; results and how to read them are in docs/benchmarks.md."""

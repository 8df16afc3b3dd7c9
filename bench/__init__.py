"""Benchmarks, not tests: ``python -m bench.<script>``; the harness is bench/harness.py, the data
flows.demo.generate."""

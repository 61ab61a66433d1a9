"""`make bench`'s speed figures (`python -m benchmarks.run`), importable by the tests as `benchmarks`."""

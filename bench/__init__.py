"""Benchmarks: run against the emulators over loopback HTTP; each prints a table,
writes JSON to bench/results/ and draws a PNG plot."""

"""`make bench`: every benchmark, one after the other."""

from __future__ import annotations

from bench import budget, faults, latency, nplus1, pagination, replicas, warm

BENCHMARKS = [latency, pagination, nplus1, faults, budget, warm, replicas]

if __name__ == "__main__":
    for benchmark in BENCHMARKS:
        print(f"\n== {benchmark.__name__} ==")
        benchmark.main()

"""Benchmarks: each bench_<name>.py has main() that prints its figures (`make bench`)."""

"""Test-data tools: synthetic calls with known ground truth for tests, benchmarks and the demo."""

"""Operator tools: the CLI, the demo, setup (topics, migrations) and the seed's monitoring queries."""

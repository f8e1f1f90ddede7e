"""The pipeline runtime: the stage registry and result models, events and their codec, topics,
the stage worker and the service loop it shares with the tracker, transactions, Kafka clients, metrics."""

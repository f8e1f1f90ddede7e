"""The pipeline runtime: events and their codec, topics, the stage worker, transactions, Kafka clients, metrics."""

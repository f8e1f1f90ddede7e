"""cofi: Kafka event-driven audit pipeline for recorded calls."""

__version__ = "0.1.0"

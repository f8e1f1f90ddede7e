"""The operator and QA console: batches, one batch, one call (audio, transcript, evidence, verdict)."""

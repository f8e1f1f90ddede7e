"""Language-ID stage: Whisper language detection on the (trimmed) call."""

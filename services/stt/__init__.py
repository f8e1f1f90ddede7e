"""STT stage: per-channel Whisper transcription with word timestamps, and speech parameters."""

"""Audio I/O shared by the audio stages."""

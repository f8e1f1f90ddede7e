"""The tracker service: batch intake, progress tracking, recovery; the only DB writer."""

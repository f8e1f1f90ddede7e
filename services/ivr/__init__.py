"""IVR stage: finds where the automated prelude (prompt, DTMF, hold music) ends and trims it."""

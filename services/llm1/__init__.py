"""llm1 stage: the audit questionnaire and trade verification over the transcript, by an LLM."""

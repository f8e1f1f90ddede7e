"""llm2 stage: answer normalization, custom rules, speech-parameter questions, score and verdict."""

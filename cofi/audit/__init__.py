"""The audit domain shared by llm1 and llm2: questionnaire, rules, trades, answer normalization, prompts, evidence, the LLM client."""

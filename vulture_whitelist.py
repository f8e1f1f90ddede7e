"""Names `make lint`'s dead-code check (vulture) must not report: they are used, but by a framework
(pydantic, http.server, Typer, pytest, SQL built from `__dict__`), not by a call vulture can see.
Keep it short: anything else vulture finds is dead code to delete."""

# ruff: noqa
_ = object()

# pydantic: validators and fields read through model_dump() / Avro, never by attribute
_._consistent, _._unique_ids, _._both_spellings, _._one_kind, _._language_codes, _.version, _.model_config
_.outputPath, _.sampleRate, _.noiseReductionDb, _.ivrDetected, _.dtmfDigits
_.durationSec, _.talkTimeAgentSec, _.talkTimeCustomerSec, _.talkRatio, _.silenceRatio, _.longestSilenceSec
_.overtalkSec, _.speechRateWpm, _.tradeId, _.promptTokens, _.completionTokens, _.maxPoints, _.ruleId
_.evidenceLine

# http.server handlers
_.do_GET, _.do_POST, _.log_message, _.server_version, _.protocol_version, _.close_connection, _.daemon_threads

# rich and Typer: attributes and callbacks read by the library
_.caption, _._main

# tables and rows read by SQLAlchemy / Alembic / `text()` parameters from `row.__dict__`
_.webhook_outbox, _.batch_file_counts, _.eventType, _.dedupKey, _.details

# pytest
_.pytestmark, _.pytest_plugins
_.process_settings_read_afresh  # an autouse fixture: pytest calls it around every test

# the console: fields read by Jinja templates; uvicorn and Selenium attributes set for the library
_.effect, _.per_s, _.last_minute, _.should_exit, _.binary_location

# pydantic validators of Settings (called by pydantic)
_._comma_list, _._no_misspelt_security_setting, _._store_url

# Presidio: the recognizer interface its AnalyzerEngine calls (`nlp_artifacts` is passed by keyword)
_.load, _.nlp_artifacts
nlp_artifacts = None

"""The topic contract: pydantic v2 models for every topic's records, generated JSON Schemas, examples."""

"""Operations tooling for meterstream: the CLI, the jar cache, the local Kafka broker."""

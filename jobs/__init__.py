"""Flink wiring: sources, sinks, operators, uids, environment and configuration. Thin adapters over `udfs`."""

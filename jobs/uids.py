"""Operator uids and state names in one place. A uid is the identity of an operator's state in checkpoints and
savepoints: change one only on purpose, with a new version suffix."""

PASSTHROUGH_SOURCE = "passthrough-kafka-source-v1"
PASSTHROUGH_TRANSFORM = "passthrough-normalise-v1"
PASSTHROUGH_SINK = "passthrough-kafka-sink-v1"

"""Pure unit tests: no JVM, no Kafka."""

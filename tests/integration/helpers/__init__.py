"""Helpers for esmd's integration tests: processes, AWS emulators, Kafka, funchost, esmd."""

"""Ingest: an event from the HTTP body to Kafka (validate, identify, enrich, publish)."""

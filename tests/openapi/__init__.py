"""Tests of the OpenAPI documents against the live service."""

"""Shared pytest fixtures for the relevance area (session-scoped, built once per test run)."""

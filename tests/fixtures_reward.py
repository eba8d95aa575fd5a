"""Shared pytest fixtures for the reward area (session-scoped, built once per test run)."""

"""Tests: mirror backend/, against a real PostgreSQL and real signatures."""

"""Test support: pytest plugins shared by the suite."""

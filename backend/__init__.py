"""FastAPI backend that trusts Better Auth sessions."""

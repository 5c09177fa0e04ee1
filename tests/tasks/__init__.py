"""Task API tests."""

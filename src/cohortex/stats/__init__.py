"""The math behind the public statistics (private): moments, p-values."""

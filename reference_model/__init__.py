"""reference_model package."""

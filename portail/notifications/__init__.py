"""notifications package."""

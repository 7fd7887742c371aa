"""Persistence: tables (models), migrations, and the repository, the only code that speaks SQL."""

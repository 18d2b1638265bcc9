"""pytest-pgready: prove a PostgreSQL deployment is production ready, with evidence."""

__version__ = "0.1.0"

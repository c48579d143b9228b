"""Input shapes, declared once and used by REST and GraphQL."""

"""GraphQL object and input types, one module per domain type."""

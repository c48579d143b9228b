"""URL prefixes shared by the REST modules."""

API = "/api/v1"

"""The success bodies of the REST endpoints, declared once.

Each shape is a TypedDict: endpoints build plain dicts (serialized with orjson,
no model instances on the hot paths) and name the shape in their return type
(``Ok[AgentList]``), and /api/v1/openapi.json generates its response schemas
from the same declarations, so the documented and the served shapes are one.
"""

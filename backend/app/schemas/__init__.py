"""Pydantic wire shapes per entity: <Entity>Create, <Entity>Update, <Entity>Read, <Entity>Page."""

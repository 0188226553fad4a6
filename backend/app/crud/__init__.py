"""Data logic per entity: small async functions over an AsyncSession; they never commit."""

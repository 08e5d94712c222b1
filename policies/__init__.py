"""The default policy files (Casbin models, permissions, abilities, path and account rules), as data."""

"""The admin side of the identity service: abilities, and the changes admins make (API and CLI alike)."""

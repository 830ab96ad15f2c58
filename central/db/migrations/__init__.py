"""Alembic migrations of central's database: ``env.py`` and one module per
revision in ``versions/``, run by ``python -m central db upgrade``
(:mod:`central.db.migrate`)."""

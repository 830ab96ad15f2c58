"""Central's database: the engine and tables (SQLAlchemy Core, SQLite or
PostgreSQL) and their migrations.
"""

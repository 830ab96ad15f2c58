"""The resident registry: the adapter interface (:mod:`.adapter`) and the
reference SQLite registry (:mod:`.sqlite`).
"""

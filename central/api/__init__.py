"""Central's HTTP API: the FastAPI app factory (:mod:`central.api.app`) and
bearer tokens (:mod:`central.api.tokens`).
"""

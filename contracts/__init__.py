"""What both ends of the product agree on, imported by devices and central
alike: the MQTT wire contract (:mod:`contracts.mqtt`), the reservation hashes
both ends compute (:mod:`contracts.reservations_hash`) and the HTTPS issuance
contract (:mod:`contracts.issuance`). Pure data and functions: no I/O.

It imports only the foundation.
"""

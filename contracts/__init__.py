"""What both ends of the product agree on, imported by devices and central
alike: the MQTT wire contract (:mod:`contracts.mqtt`), the reservation hashes
both ends compute (:mod:`contracts.reservations_hash`), the HTTPS issuance
contract (:mod:`contracts.issuance`) and the check of the My Number Card's
signature (:mod:`contracts.jpki`). Pure data and functions: no I/O.

It imports only the foundation.
"""

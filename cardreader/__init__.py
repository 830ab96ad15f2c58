"""Card reader: PC/SC access through pyscard, My Number Card (JPKI)
authentication, member-card IDs and virtual cards. Imports nothing else of
ours (only its CLI uses ``sync.config`` / ``foundation.logs`` / ``sync.cli``).

Modules: ``service`` (the facade the kiosk uses), ``pcsc`` (contexts,
connections, APDU transport with timeouts and trace), ``watch`` (insert /
remove events handed to the caller), ``identify`` (card kind by behaviour),
``jpki`` (certificates, PIN, signature), ``certref`` (serial and issuer
from the first bytes of a certificate), ``certs``, ``credential`` (opaque
references), ``apdu`` (pure building and parsing), ``errors``, ``sim`` (virtual
cards played into pcscd through vpcd, and their test PKI ``sim.testpki``). See
docs/cardreader.md.
"""

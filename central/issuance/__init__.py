"""Certificate issuance at central: catalogue, challenges and sessions
(:mod:`.service`), orders and the money rule's central side
(:mod:`.orders`), JPKI verification, PDFs, the resident registry, the
mutual-TLS listener.
"""

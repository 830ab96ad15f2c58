"""Card reader: PC/SC access through pyscard, My Number Card (JPKI)
authentication, member-card IDs and virtual cards. (Built in the card reader
issue.) Imports nothing else of ours."""

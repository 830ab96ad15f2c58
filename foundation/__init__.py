"""What every process of the product shares: configuration loading and
validation helpers, the error root and exit codes, JSON logging with
redaction, translations, the personal-data guard, clock trust, the command
line runner and the process supervisor.

It imports nothing else of this repository: every other package may build on it.
"""

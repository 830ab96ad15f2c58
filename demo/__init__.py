"""The demo: every landed part on one machine with simulated hardware. Product
code never imports it.
"""

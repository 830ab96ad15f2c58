"""Deployment: fleet PKI, device provisioning, systemd units, broker config.
(Built in the sync and provisioning issues.)"""

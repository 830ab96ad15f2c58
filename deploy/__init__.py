"""Deployment: fleet PKI, device provisioning, the on-device installer, the
doctor, systemd units, broker config and the Ansible rollout."""

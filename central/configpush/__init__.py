"""Pushed device configuration at central (docs/ops.md, "Configuration push"):
desired settings per facility and device, versioned; pushing them as
``config.apply`` commands; each device's desired, applied and refused
versions. The allowlist and the merge are shared with the device
(:mod:`contracts.configpush`)."""

from central.configpush.service import (
    ConfigPushRefused,
    ConfigPushService,
    ConfigVersion,
    Desired,
    DeviceConfigStatus,
    Issuer,
)

__all__ = [
    "ConfigPushRefused",
    "ConfigPushService",
    "ConfigVersion",
    "Desired",
    "DeviceConfigStatus",
    "Issuer",
]

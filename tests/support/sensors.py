"""A sensor tick evaluated the way the daemon evaluates it: a real context on the instance,
with only the resources the sensor asks for (the daemon builds no others, so a connection the
sensor never touches needs no credentials)."""

from __future__ import annotations

from typing import Any

import dagster as dg


def evaluate_tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance) -> Any:
    sensor = defs.resolve_sensor_def(name)
    resources = {
        key: value
        for key, value in (defs.resources or {}).items()
        if key in sensor.required_resource_keys
    }
    context = dg.build_sensor_context(
        instance_ref=instance.get_ref(), definitions=defs, resources=resources
    )
    return sensor.evaluate_tick(context)

"""Mapping source rows onto a Salesforce object: `values` reads source values, `rules` holds
what each field type accepts, `batch` maps a whole batch and sets the bad rows aside."""

from sf_assets.salesforce.mapping.batch import (
    MappedBatch,
    MappedField,
    MappingError,
    map_batch,
    output_dtype,
    resolve_targets,
    target_for,
)

__all__ = [
    "MappedBatch",
    "MappedField",
    "MappingError",
    "map_batch",
    "output_dtype",
    "resolve_targets",
    "target_for",
]

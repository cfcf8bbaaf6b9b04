"""Dagster assets built from sync specs: one factory per spec kind (`writeback`,
`sales_upload`), and what they share (partitions, the staged source, sensors, checks, metadata)."""

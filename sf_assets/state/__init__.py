"""sf-assets' own state: staged batches, the write ledger, open write jobs and watermarks, in
one store every step, retry and sensor of a sync sees."""

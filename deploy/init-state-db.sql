-- sf-assets keeps its state (staged batches, ledger, leases, cursors) in its own database beside
-- the Dagster instance's; the store creates and migrates its tables itself.
CREATE DATABASE sf_assets OWNER dagster;

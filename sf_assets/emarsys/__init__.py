"""Writing order lines into Emarsys Smart Insight sales data, each line exactly once.

`lines` maps and validates a batch, `csv_file` turns it into the upload body, `ledger` keeps
the lines already sent in the state store, and `upload` ties them together with the
rules that keep a line from ever being sent twice (Emarsys appends and never de-duplicates).
"""

"""Tables merged from the raw copies in the warehouse: `people` (Contacts and Leads, with
merge strategies and primary/fallback keys), `organizations` (Accounts keyed by org and id)
and `orders` (Orders with their items). Nothing here talks to Salesforce: the merges read the
copies the reader committed, so they can be rebuilt at any time without an API call."""

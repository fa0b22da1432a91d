"""The journey language: the document (graph), the node types (nodes), conditions (rules) and
message templates. Pure: no database, no Redis, no clock of its own."""

"""SQLite storage: the connection, the schema migrations, the op log and the state tables."""

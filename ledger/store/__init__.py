"""The durable store of the log: schema, migrations, engines and the log's read side."""

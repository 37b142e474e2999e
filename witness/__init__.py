"""An independent witness per C2SP tlog-witness: its own key and state, cosigns a log's
checkpoint only when it is consistent with the last one it cosigned (docs/operations.md)."""

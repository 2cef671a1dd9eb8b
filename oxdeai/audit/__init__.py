"""The tamper-evident decision log: the hash chain and its signed checkpoints (chain),
the writer (log) and the checker behind `oxdeai audit verify` (check)."""

"""Message types every service imports: commands (imperative) and events (past tense)."""

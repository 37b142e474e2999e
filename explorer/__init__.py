"""The public explorer site and the auditor's verifier. Not built yet: see the README's
"What exists today" table."""

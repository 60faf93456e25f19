"""One module per revision of the compliance record's schema, oldest first."""

"""The store as fixadapter wrote it before schema versions (main at d0213b6), frozen for the migration tests.

schema.py, repository.py and command_ids.py are verbatim copies of fixadapter/store/ at that commit (only
their imports of each other point here); compliance_table.py holds the compliance tables of that commit.
Never edit them to follow today's code: they are what an existing store out there was written by.
"""

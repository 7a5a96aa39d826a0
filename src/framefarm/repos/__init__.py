"""Repositories: the only code that writes SQL, one module per concern, each a set of
functions over a connection from :class:`framefarm.db.database.Database` that return
typed records (:mod:`framefarm.records`), never raw rows.

The caller opens the transaction, so one operation can span several repositories (a
completion writes tasks, jobs, nodes, exports and webhook deliveries at once).
"""

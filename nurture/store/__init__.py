"""Persistence: the models, engines and sessions, one query module per table family, migrations.

The database is nurture's source of truth (the broker only dispatches), so
everything durable lives behind this package, and every statement of the
product is a named function here: `models` for the tables and `statuses` for
what their status columns hold, `db` for connecting, migrating and translating
the driver's errors, `sql` for what the query modules share, then one module per
family of tables (`contacts`, `stages`, `events`, `scores`, `enrollments`,
`workflows`, `sends` and `outcomes`, `handoffs`, `notifications`,
`suppressions`, `privacy`, `reports`, `metrics`).

This file imports nothing: importing one module of the package loads only it.
"""

"""Nurture projects as files: read, parse, check. Knows no database, broker or SMTP."""

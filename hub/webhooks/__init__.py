"""Webhooks: provider webhooks in (verified, stored in the inbox, processed in a job) and the tenant's
events out to its endpoints (signed with Standard Webhooks, retried, every attempt logged)."""

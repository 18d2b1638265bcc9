"""Drills: the procedures behind the backup, PITR and failover checks.

They provision, copy, restore and break things, and return what they measured; the suites turn
those results into verdicts. Shared parts: `content` (what "identical data" means) and `scratch`
(instances and started copies to restore into).
"""

"""Drills: the procedures behind the backup, PITR and failover checks.

They provision, copy, restore and break things, and return what they measured; the suites turn
those results into verdicts. Shared parts: `content` (what "identical data" means), `scratch`
(instances and started copies to restore into), `toolrun` (the client tools the backup drills run)
and `probes` / `replication` (node roles, slots and catch-up waits for the failover drills).
"""

"""Intake: what a channel sends, taken in. The event contract (contract), JSON that is safe to
store (payload), admission against rates and the backlog (admission), durable storage (store)
and the group commit that serves every webhook request (commit). Applying the stored events is
engine.execution's work."""

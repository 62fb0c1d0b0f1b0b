"""The sans-IO core: every decision of the client, as generators of effects.

Nothing in this package does I/O, sleeps, reads the real clock or opens an httpx client. A flow
yields effects (`Http`, `Sleep`, `Notify`, `Fetch`); a driver in `comet_replicate._drivers`
performs each one and sends the result back (or throws the exception in). Every bound a request
needs (its timeout phases, its total time, its body cap) is a field of its effect, so the sync and
the async driver honour it the same way. The clock and the random source come in through
`state.Shared`, so tests run every flow on a fake clock.

Modules, in the order a request passes through them: `effects` (the vocabulary), `state`
(configuration and learned state), `retry` (retry rules, Retry-After, deadlines), `status`
(what a prediction status means), `parse` (2xx bodies to `Prediction`), `request` (the one retry
loop), `operations` (create/get/cancel), `schedule` (when to poll), `wait` (wait and run),
`download` (output files).
"""

"""Live data: changes made in a CRM reach the gateway's caches and its subscribers.

A change comes from a provider's webhook (`webhooks`), from polling a provider that
has none (`poller`), or from the gateway's own writes. Each becomes one `RecordChange`
published on the `ChangeHub` (`hub`), which forgets the provider's cached reads and
hands the change to every subscriber, on every replica through Redis (`fanout`), once
even when a write of the gateway comes back as a webhook or a poll (`echoes`).
`slots` counts each client's open subscriptions. Nothing here knows GraphQL.
"""
